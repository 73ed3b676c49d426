//! Secrets in a run: masked wherever they surface, whatever their encoding or their shape.

use super::*;

#[test]
fn secrets_that_look_like_journal_keys_are_masked_without_breaking_it() {
    let sb = Sandbox::new();
    let mut e = exp(
        json!([{"type": "action", "name": "say", "provider": {"type": "process", "path": "echo", "arguments": ["${password}", "${user}"]}}]),
    );
    e["secrets"] = json!({"db": {"password": "hunter2", "user": "node", "pin": 7}});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(sb.path("journal.json")).unwrap();
    assert!(!text.contains("hunter2"));
    let j = out.journal();
    assert_eq!(j["run"][0]["output"]["stdout"], "*** ***\n");
    assert!(
        j["node"].is_string() && j["start"].as_str().unwrap().ends_with("+00:00"),
        "journal keys and timestamps intact"
    );
    assert_eq!(j["experiment"]["secrets"]["db"]["password"], "***");
}

#[test]
fn secrets_echoed_json_escaped_or_url_encoded_never_reach_the_journal() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    // a quote, a backslash, a slash and non-ASCII (one beyond the BMP): every JSON encoder
    // escapes these somehow
    let secrets = ["pa\"ss\\wörd", "tök🔑/x"];
    let echo = |name: &str, secret: &str, as_json: bool| {
        json!({"type": "probe", "name": name, "provider": {"type": "http",
            "url": format!("{}/echo-ascii", server.base),
            "arguments": if as_json { json!({"q": secret, "as": "json"}) } else { json!({"q": secret}) }}})
    };
    let printer = "import json, sys; a = sys.argv[1:]; \
        print(json.dumps(a)); print(json.dumps(a, ensure_ascii=False)); \
        print(json.dumps({s: 1 for s in a}))";
    let mut e = exp(json!([
        echo("text", "${pw}", false),
        echo("parsed", "${tok}", true),
        echo("text2", "${tok}", false),
        {"type": "action", "name": "prints", "provider": {"type": "process", "path": "python3",
            "arguments": ["-c", printer, "${pw}", "${tok}"]}},
        {"type": "action", "name": "fails", "provider": {"type": "http",
            "url": "http://127.0.0.1:9/x", "arguments": {"t": "${tok}"}}},
    ]));
    e["secrets"] = json!({"api": {"pw": secrets[0], "tok": secrets[1]}});
    let out = sb.run_with(&sb.write_json("e.json", &e), &[], |c| {
        c.env("RUST_LOG", "debug");
    });
    assert_eq!(out.code, 0, "{}", out.stderr);
    let journal = std::fs::read_to_string(sb.path("journal.json")).unwrap();
    for secret in secrets {
        for form in shared::redact::forms(secret) {
            assert!(!journal.contains(&form), "{form:?} leaked into the journal");
            assert!(!out.stderr.contains(&form), "{form:?} leaked into the logs");
        }
    }
    // the secrets were sent and echoed: what is journaled is their mask
    let j = out.journal();
    assert_eq!(j["run"][0]["output"]["body"], r#"{"***":"***"}"#);
    assert_eq!(j["run"][1]["output"]["body"], json!({"***": "***"}));
    assert_eq!(j["run"][2]["output"]["body"], r#"{"***":"***"}"#);
    assert_eq!(
        j["run"][3]["output"]["stdout"],
        "[\"***\", \"***\"]\n[\"***\", \"***\"]\n{\"***\": 1, \"***\": 1}\n"
    );
    assert_eq!(j["run"][4]["status"], "failed");
}

#[test]
fn what_a_python_extension_prints_is_logged_with_secrets_masked() {
    let sb = Sandbox::new();
    let mut e = exp(
        json!([{"type": "action", "name": "chatty", "provider": {"type": "python", "module": "os", "func": "system",
        "arguments": {"command": "echo extension says ${token} >&2"}}}]),
    );
    e["secrets"] = json!({"api": {"token": "tok-python-secret"}});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("os.system: extension says ***"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("tok-python-secret"));
}
