//! Where `worker run` writes its journal: checked before the run starts, written in place.

use super::*;

/// `worker run --journal-path JOURNAL` on an experiment whose action leaves a marker file.
fn run_with_journal_at(sb: &Sandbox, journal: &str) -> std::process::Output {
    let e = exp(json!([process("act", "action", "touch method-ran")]));
    let path = sb.write_json("e.json", &e);
    sb.command(&["run", "--journal-path", journal, path.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn a_journal_path_in_a_missing_directory_fails_before_the_run_starts() {
    let sb = Sandbox::new();
    let output = run_with_journal_at(&sb, "no-such-dir/journal.json");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write the journal to no-such-dir/journal.json"),
        "{stderr}"
    );
    assert!(
        !sb.path("method-ran").exists(),
        "the method ran though no journal could be written"
    );
}

#[test]
fn a_journal_path_that_cannot_be_written_fails_before_the_run_starts() {
    let sb = Sandbox::new();
    // a directory under a regular file: not writable even for root
    sb.write("file.txt", "");
    let output = run_with_journal_at(&sb, "file.txt/journal.json");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write the journal to file.txt/journal.json"),
        "{stderr}"
    );
    assert!(!sb.path("method-ran").exists());
}

#[test]
fn a_journal_is_written_in_place_with_no_temporary_file_left_beside_it() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("out")).unwrap();
    std::fs::write(sb.path("out/journal.json"), "stale").unwrap();
    let output = run_with_journal_at(&sb, "out/journal.json");
    assert_eq!(output.status.code(), Some(0));
    assert!(sb.path("method-ran").exists());
    let names: Vec<String> = std::fs::read_dir(sb.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["journal.json"]);
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("out/journal.json")).unwrap())
            .unwrap();
    assert_eq!(j["status"], "completed");
}
