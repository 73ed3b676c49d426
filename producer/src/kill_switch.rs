//! `producer halt` and `producer resume`, and what they tell the operator: the kill switch has
//! two halves (the store's `control/halt` flag and, on AWS, the SSM parameter), written
//! independently, and the operator must learn which half was written and which was not, by line
//! and by exit code.

use cli::Exit;

/// `producer halt` (`Some(reason)`) and `producer resume` (`None`): the store's flag and, when
/// one is configured, the SSM parameter are written independently (one failing does not keep
/// the other from being written), each outcome on stderr; `Error` (exit 2) if either failed.
pub async fn halt(reason: Option<&str>, args: &cli::BackendArgs) -> anyhow::Result<Exit> {
    let halting = reason.is_some();
    let store = match args.open(aws::Role::Worker).await {
        Ok(backend) => shared::fleet::safety::guard::set_halt(&backend.store, reason)
            .await
            .map(|()| crate::ports::locate(&backend, shared::fleet::safety::guard::HALT_KEY))
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot open the backend: {e}")),
    };
    let ssm = match args.halt_parameter() {
        Some(parameter) => Some(
            aws::faults::stop_conditions::set_ssm_halt(
                &aws::sdk::load().await,
                &parameter,
                halting,
            )
            .await
            .map(|()| parameter),
        ),
        None => None,
    };
    let (lines, exit) = report(halting, &store, ssm.as_ref());
    for line in lines {
        eprintln!("{line}");
    }
    if exit == Exit::Held {
        match reason {
            Some(r) => println!(
                "halted ({r}): running jobs stop and run their rollbacks; no job starts until `producer resume`"
            ),
            None => println!("resumed: jobs start again"),
        }
    }
    Ok(exit)
}

/// What `producer halt`/`resume` says about each write of the kill switch (`Ok`: where it was
/// written), and its exit code: 0 if every write succeeded, 2 if any failed. Pure.
pub fn report(
    halting: bool,
    store: &Result<String, String>,
    ssm: Option<&Result<String, String>>,
) -> (Vec<String>, Exit) {
    let state = if halting { "on" } else { "off" };
    let mut lines = vec![match store {
        Ok(at) => format!("kill switch {state}: the store's flag {at} is written"),
        Err(e) => format!("error: kill switch NOT {state} in the store: {e}"),
    }];
    match ssm {
        Some(Ok(parameter)) => lines.push(format!(
            "kill switch {state}: the SSM parameter {parameter} is written"
        )),
        Some(Err(e)) => lines.push(format!(
            "error: kill switch NOT {state} in the SSM parameter: {e}"
        )),
        None => lines
            .push("no SSM parameter configured (--halt-parameter): the store's flag only".into()),
    }
    let failed = store.is_err() || ssm.is_some_and(Result::is_err);
    if failed {
        lines.push(format!(
            "error: the kill switch is only partly {}; fix the error above and run `producer {}` again",
            if halting { "set" } else { "cleared" },
            if halting { "halt" } else { "resume" }
        ));
    }
    (lines, if failed { Exit::Error } else { Exit::Held })
}

#[cfg(test)]
mod tests {
    use super::report;

    #[test]
    fn each_kill_switch_write_is_reported_and_any_failure_exits_2() {
        let ok = |at: &str| Ok::<String, String>(at.to_string());
        let err = || Err::<String, String>("connection refused".to_string());
        for halting in [true, false] {
            for (store, ssm, code) in [
                (ok("state/store/control/halt"), None, 0),
                (ok("state/store/control/halt"), Some(ok("/b/halt")), 0),
                (ok("state/store/control/halt"), Some(err()), 2),
                (err(), None, 2),
                (err(), Some(ok("/b/halt")), 2),
                (err(), Some(err()), 2),
            ] {
                let (lines, got) = report(halting, &store, ssm.as_ref());
                let text = lines.join("\n");
                assert_eq!(got.code(), code, "{text}");
                let state = if halting { "on" } else { "off" };
                let store_line = match &store {
                    Ok(_) => format!(
                        "kill switch {state}: the store's flag state/store/control/halt is written"
                    ),
                    Err(_) => {
                        format!("error: kill switch NOT {state} in the store: connection refused")
                    }
                };
                assert_eq!(lines[0], store_line);
                let ssm_line = match &ssm {
                    None => "no SSM parameter configured".to_string(),
                    Some(Ok(_)) => {
                        format!("kill switch {state}: the SSM parameter /b/halt is written")
                    }
                    Some(Err(_)) => format!(
                        "error: kill switch NOT {state} in the SSM parameter: connection refused"
                    ),
                };
                assert!(lines[1].starts_with(&ssm_line), "{text}");
                assert_eq!(text.contains("only partly"), code == 2, "{text}");
            }
        }
    }
}
