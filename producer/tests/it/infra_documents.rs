//! The deployment registers every SSM command document the fault actions send, with the same
//! content as `ssm-documents/<Name>.yaml` (the file the document tests run), under the name the
//! worker computes from `BROKER_SSM_DOCUMENT_PREFIX`, and lets the worker send exactly those.

use aws::native::documents::DOCUMENTS;
use serde_json::Value;
use shared::load::document::{Format, parse};
use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// YAML → data. CloudFormation's short tags (`!Sub`, `!Ref`, `!GetAtt`...) are read as plain
/// values, which is enough to compare the documents' content.
fn yaml(relative: &str) -> Value {
    parse(&read(relative), Format::Yaml)
        .unwrap_or_else(|e| panic!("{relative}: {e:?}"))
        .value
}

#[test]
fn every_document_is_registered_with_the_content_of_its_file() {
    let template = yaml("../infra/experiment-broker.yaml");
    let resources = template["Resources"].as_object().expect("Resources");
    let registered: Vec<(&String, &Value)> = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::SSM::Document")
        .collect();
    assert_eq!(
        registered.len(),
        DOCUMENTS.len(),
        "one AWS::SSM::Document per entry of documents::DOCUMENTS"
    );
    for document in DOCUMENTS {
        let name = document.name;
        let logical = format!("{name}Document");
        let resource = resources
            .get(&logical)
            .unwrap_or_else(|| panic!("the template has no {logical}"));
        let properties = &resource["Properties"];
        assert_eq!(resource["Type"], "AWS::SSM::Document", "{logical}");
        // `!Sub "${AWS::StackName}-<Name>"`: the worker prepends BROKER_SSM_DOCUMENT_PREFIX,
        // which the template sets to `${AWS::StackName}-`
        assert_eq!(
            properties["Name"],
            format!("${{AWS::StackName}}-{name}"),
            "{logical}"
        );
        assert_eq!(properties["DocumentType"], "Command", "{logical}");
        assert_eq!(properties["DocumentFormat"], "YAML", "{logical}");
        let file = yaml(&format!("../ssm-documents/{name}.yaml"));
        assert!(
            properties["Content"] == file,
            "{logical}'s Content differs from ssm-documents/{name}.yaml: copy the file into the template"
        );
    }
}

#[test]
fn the_worker_gets_the_document_prefix_and_may_send_only_those_documents() {
    let text = read("../infra/experiment-broker.yaml");
    assert!(
        text.contains(
            r#"- { Name: BROKER_SSM_DOCUMENT_PREFIX, Value: !Sub "${AWS::StackName}-" }"#
        ),
        "the worker task definition sets BROKER_SSM_DOCUMENT_PREFIX to the documents' prefix"
    );
    let template = yaml("../infra/experiment-broker.yaml");
    let policy =
        template["Resources"]["WorkerFaultInjectionPolicy"]["Properties"]["PolicyDocument"]
            .as_str()
            .expect("the fault-injection policy is a !Sub JSON text");
    for document in DOCUMENTS {
        assert!(
            policy.contains(&format!(":document/${{{}Document}}\"", document.name)),
            "the worker may send {}",
            document.name
        );
    }
    assert_eq!(
        policy.matches(":document/").count(),
        DOCUMENTS.len(),
        "and no other document"
    );
}
