//! Text that looks like shell syntax, in probe values, HTTP bodies and operator vars.

use super::*;

#[test]
fn a_probe_value_with_shell_syntax_reaches_a_string_form_action_as_literal_text() {
    let sb = Sandbox::new();
    let hostile = "x; touch process-ran `touch backtick-ran` $(touch subst-ran) it's";
    let mut e = exp(json!([
        {"type": "action", "name": "bare", "provider": {"type": "process", "path": "echo", "arguments": "got ${hostile} end"}},
        {"type": "action", "name": "quoted", "provider": {"type": "process", "path": "echo", "arguments": "\"in double ${hostile}\" 'in single ${hostile}'"}}
    ]));
    // list-form probe arguments: the probe itself never goes through a shell
    e["configuration"] = json!({"hostile": {"type": "probe", "name": "discover",
        "provider": {"type": "process", "path": "printf", "arguments": ["%s", hostile]}}});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.journal();
    assert_eq!(
        j["run"][0]["output"]["stdout"],
        format!("got {hostile} end\n")
    );
    assert_eq!(
        j["run"][1]["output"]["stdout"],
        format!("in double {hostile} in single {hostile}\n")
    );
    for marker in ["process-ran", "backtick-ran", "subst-ran"] {
        assert!(
            !sb.path(marker).exists(),
            "{marker}: the probe's output ran as shell"
        );
    }
}

#[test]
fn an_http_body_feeding_dynamic_configuration_is_never_run_as_shell() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    // the echoed body holds a quote, so Python's str() of the response puts it in "…", where
    // an unquoted $(…) would run
    let hostile = "it's $(touch http-ran)";
    let mut e = exp(json!([
        {"type": "action", "name": "use", "provider": {"type": "process", "path": "echo", "arguments": "got ${answer}"}}
    ]));
    e["configuration"] = json!({"answer": {"type": "probe", "name": "ask",
        "provider": {"type": "http", "url": format!("{}/echo", server.base), "method": "POST", "arguments": hostile}}});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let stdout = out.journal()["run"][0]["output"]["stdout"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stdout.contains(hostile), "{stdout}");
    assert!(!sb.path("http-ran").exists(), "the HTTP body ran as shell");
}

#[test]
fn an_operator_var_with_shell_syntax_is_substituted_raw_as_in_the_reference() {
    let sb = Sandbox::new();
    let mut e = exp(json!([
        {"type": "action", "name": "use", "provider": {"type": "process", "path": "echo", "arguments": "${target}"}}
    ]));
    // a --var replaces the probe: the value is the operator's, not the system's
    e["configuration"] = json!({"target": {"type": "probe", "name": "discover",
        "provider": {"type": "process", "path": "echo", "arguments": ["from-probe"]}}});
    let out = sb.run(
        &sb.write_json("e.json", &e),
        &["--var", "target=a; touch var-ran"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.journal()["run"][0]["output"]["stdout"], "a\n");
    assert!(
        sb.path("var-ran").exists(),
        "an operator's value is shell text, as in the reference"
    );
}
