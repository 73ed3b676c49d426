//! The seed library's names, natively, against the moto server `scripts/test.sh` starts: an
//! experiment calling every `experimentvr.ec2.actions` function with the library's argument
//! names validates without a warning and plans under `--dry actions` (sending nothing); a
//! misspelled name still warns; a dict `parameter_map` runs its levels in order with their
//! overrides sent to SSM; an alias sends what the library's name sends; a seed document name
//! given to `send_command` sends ours.
//!
//! What was sent is read back from moto's recording, not from our own output.

use crate::util;

use serde_json::{Value, json};
use util::Sandbox;
use util::moto::{self, Aws, Env, OPT_IN, sent_for, sent_to, team};

const MODULE: &str = "experimentvr.ec2.actions";

/// The library's selection arguments, on the team's instances.
fn selection(team: &str) -> Value {
    json!({"targets": null, "test_target_type": "ALL", "tag_key": "tag:team",
           "tag_value": team, "region": "us-east-1"})
}

/// Every function of the library (and the seed's older names, and the faults it has only as
/// documents), each with every one of its arguments under the library's name: (function,
/// arguments, the document it sends).
fn library_calls() -> Vec<(&'static str, Value, &'static str)> {
    let ladder = |func: &str| {
        json!({"max_duration": "900", format!("{func}_parameter_map"): {},
               format!("{func}_failure_mode"): "FailFast"})
    };
    let mut calls = vec![
        (
            "ec2_stress_packet_loss",
            json!({"ec2_stress_packet_port_type": "sport",
            "ec2_stress_packet_port_number": "0", "ec2_stress_packet_loss_percent": "90",
            "ec2_stress_packet_duration": "60", "ec2_stress_packet_interface": "eth0"}),
            "PacketLoss",
        ),
        (
            "ec2_stress_network_latency",
            json!({"ec2_stress_network_latency_port_type": "sport",
            "ec2_stress_network_latency_port_number": "0",
            "ec2_stress_network_latency_network_delay": "100",
            "ec2_stress_network_latency_duration": "60",
            "ec2_stress_network_latency_interface": "eth0"}),
            "NetworkLatency",
        ),
        (
            "ec2_stress_network_utilization",
            json!({
            "ec2_stress_network_utilization_port_type": "dport",
            "ec2_stress_network_utilization_port_number": "0",
            "ec2_stress_network_utilization_network_rate": "100",
            "ec2_stress_network_utilization_duration": "60",
            "ec2_stress_network_utilization_interface": "eth0"}),
            "BandwidthLimit",
        ),
        (
            "ec2_stress_cpu",
            json!({"ec2_stress_cpu_duration": "60", "stress_cpu_percent": "50"}),
            "StressCPU",
        ),
        (
            "ec2_stress_memory",
            json!({"ec2_stress_memory_duration": "60",
            "ec2_stress_memory_percent_per_worker": "50",
            "ec2_stress_memory_number_of_workers": "1"}),
            "StressMemory",
        ),
        (
            "ec2_exhaust_root_vol",
            json!({"ec2_exhaust_root_vol_duration": "60"}),
            "DiskFill",
        ),
        (
            "ec2_blackhole_by_port",
            json!({"ec2_blackhole_by_port_protocol": "tcp udp",
            "ec2_blackhole_by_port_source_ports": "",
            "ec2_blackhole_by_port_destination_ports": "443",
            "ec2_blackhole_by_port_direction": "BOTH",
            "ec2_blackhole_by_port_duration": "60"}),
            "BlackholePort",
        ),
        (
            "ec2_blackhole_by_ip",
            json!({"ec2_blackhole_ip": "10.0.0.9",
            "ec2_blackhole_by_ip_port_protocol": "tcp udp",
            "ec2_blackhole_by_ip_direction": "BOTH", "ec2_blackhole_by_ip_duration": "60"}),
            "BlackholeIP",
        ),
        (
            "ec2_stress_all_network_io",
            json!({"ec2_stress_all_network_io_duration": "60"}),
            "DropNewConnections",
        ),
        (
            "ec2_block_all_network_traffic",
            json!({"ec2_block_all_network_traffic_duration": "60",
            "ec2_block_all_network_traffic_interface": "eth0"}),
            "BlockAllTraffic",
        ),
        (
            "ec2_shutdown_network_interface",
            json!({"ec2_shutdown_network_interface_duration": "60",
            "ec2_shutdown_network_interface_interface": "eth0"}),
            "InterfaceDown",
        ),
    ];
    for (func, args, _) in &mut calls {
        for (k, v) in ladder(func).as_object().unwrap() {
            args[k] = v.clone();
        }
    }
    calls.push((
        "stress_memory",
        json!({"duration": "60", "number_of_workers": "1",
        "memory_percentage_per_worker": "80"}),
        "StressMemory",
    ));
    // as the seed's tc-028-2 calls it
    calls.push((
        "root_vol_exhaustion",
        json!({"workers": "55", "filesize": "4", "duration": "60"}),
        "DiskFill",
    ));
    calls
}

fn experiment_of(team: &str, calls: &[(&str, Value, &str)]) -> Value {
    let method = calls
        .iter()
        .map(|(func, args, _)| {
            let mut a = selection(team);
            for (k, v) in args.as_object().unwrap() {
                a[k] = v.clone();
            }
            moto::action(func, MODULE, func, a)
        })
        .collect();
    moto::experiment("library names", method, None)
}

fn run(sandbox: &Sandbox, file: &std::path::Path, extra: &[&str]) -> (i32, Value, String) {
    let env = Env {
        unset: &["BROKER_OPT_IN_TAG"],
        ..Env::default()
    };
    let out = moto::run(sandbox, file, extra, env);
    (out.code, out.journal().clone(), out.output())
}

#[test]
fn every_ec2_function_validates_with_the_library_s_names_and_plans_without_sending() {
    let sandbox = Sandbox::new();
    let aws = Aws::new();
    let team = team("library");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let mut calls = library_calls();
    calls.push(("terminate_instance", json!({}), ""));
    let file = sandbox.write_json("library.json", &experiment_of(&team, &calls));
    let out = sandbox.validate(&file, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        !out.stderr.contains("warning"),
        "the library's names validate without a warning:\n{}",
        out.stderr
    );

    let (code, journal, output) = run(&sandbox, &file, &["--dry", "actions"]);
    aws.terminate(&fleet);
    assert_eq!(code, 0, "{output}\n{journal:#}");
    for (i, (func, _, document)) in calls.iter().enumerate() {
        let run = &journal["run"][i];
        assert_eq!(run["activity"]["name"], *func);
        assert_eq!(run["status"], "succeeded", "{func}: {run:#}");
        assert_eq!(run["output"]["dry_run"], true, "{func}: {run:#}");
        if !document.is_empty() {
            assert!(
                output.contains(&format!("dry run: {func} would send {document} on")),
                "{func} plans {document}:\n{output}"
            );
        }
    }
    assert!(sent_to(&fleet).is_empty(), "a dry run sends nothing");

    // a misspelled library name still warns, with the name it meant
    let mut typo = library_calls();
    typo.truncate(1);
    let args = typo[0].1.as_object_mut().unwrap();
    let v = args.remove("ec2_stress_packet_loss_percent").unwrap();
    args.insert("ec2_stress_packet_loss_percnt".into(), v);
    let file = sandbox.write_json("typo.json", &experiment_of(&team, &typo));
    let out = sandbox.validate(&file, &[]);
    assert!(
        out.stderr.contains("ec2_stress_packet_loss_percnt")
            && out.stderr.contains("ec2_stress_packet_loss_percent"),
        "a wrong name warns with did-you-mean:\n{}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn a_dict_parameter_map_runs_its_levels_in_order_and_an_alias_sends_the_same() {
    let aws = Aws::new();
    aws.register("PacketLoss");
    aws.register("StressCPU");
    let team = team("levels");
    let host = aws.instances(1, &[("team", &team), OPT_IN]);
    let mut loss = selection(&team);
    loss["ec2_stress_packet_duration"] = json!("5");
    loss["ec2_stress_packet_loss_parameter_map"] = json!({
        "loss_80_percent": {"ec2_stress_packet_loss_percent": "80"},
        "loss_20_percent": {"ec2_stress_packet_loss_percent": "20", "ec2_stress_packet_duration": "3"}});
    let mut library = selection(&team);
    library["stress_cpu_percent"] = json!(70);
    library["ec2_stress_cpu_duration"] = json!(4);
    let mut ours = selection(&team);
    ours["ec2_stress_cpu_load"] = json!(70);
    ours["ec2_stress_cpu_duration"] = json!(4);
    let e = moto::experiment(
        "levels",
        vec![
            moto::action("loss", MODULE, "ec2_stress_packet_loss", loss),
            moto::action("cpu-library", MODULE, "ec2_stress_cpu", library),
            moto::action("cpu-ours", MODULE, "ec2_stress_cpu", ours),
        ],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("levels.json", &e);
    let (code, journal, output) = run(&sandbox, &file, &[]);
    aws.terminate(&host);
    assert_eq!(code, 0, "{output}\n{journal:#}");
    let levels: Vec<&Value> = journal["run"][0]["output"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["level"])
        .collect();
    assert_eq!(
        levels,
        [&json!("loss_80_percent"), &json!("loss_20_percent")]
    );
    let sent: Vec<(Value, Value)> = sent_for(&host, "loss")
        .iter()
        .map(|c| {
            assert_eq!(c["DocumentName"], "PacketLoss");
            (
                c["Parameters"]["loss"].clone(),
                c["Parameters"]["duration"].clone(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [(json!(["80"]), json!(["5"])), (json!(["20"]), json!(["3"]))],
        "one command per level, in the dict's order, with its overrides"
    );
    let params = |name: &str| {
        let found = sent_for(&host, name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0]["Parameters"].clone()
    };
    assert_eq!(
        params("cpu-library"),
        json!({"duration": ["4"], "load": ["70"], "workers": ["0"]})
    );
    assert_eq!(
        params("cpu-ours"),
        params("cpu-library"),
        "the alias sends the same"
    );
}

#[test]
fn send_command_with_a_seed_document_name_sends_ours() {
    let aws = Aws::new();
    aws.register("PacketLoss");
    let team = team("seeddoc");
    let host = aws.instances(1, &[("team", &team), OPT_IN]);
    let targets = json!([{"Key": "tag:team", "Values": [team]}]);
    let e = moto::experiment(
        "seed document",
        vec![
            moto::action(
                "seed-loss",
                "chaosaws.ssm.actions",
                "send_command",
                json!({
                "document_name": "StressPacketLoss", "targets": targets,
                "parameters": {"duration": "5", "loss": "7", "interface": "eth0",
                               "portNumber": "0", "portType": "sport",
                               "installDependencies": "True"}}),
            ),
            moto::action(
                "seed-pod",
                "chaosaws.ssm.actions",
                "send_command",
                json!({
                "document_name": "PodStressCPU", "targets": targets}),
            ),
        ],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("seeddoc.json", &e);
    let (_, journal, output) = run(&sandbox, &file, &[]);
    aws.terminate(&host);
    assert_eq!(
        journal["run"][0]["status"], "succeeded",
        "{output}\n{journal:#}"
    );
    let sent = sent_for(&host, "seed-loss");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["DocumentName"], "PacketLoss");
    assert_eq!(
        sent[0]["Parameters"],
        json!({"duration": ["5"], "interface": ["eth0"], "loss": ["7"], "portType": ["sport"]})
    );
    let refused = &journal["run"][1];
    assert_eq!(refused["status"], "failed", "{refused:#}");
    assert!(
        refused["exception"]
            .to_string()
            .contains("PodStressCPU: a Kubernetes fault"),
        "{refused:#}"
    );
    assert!(sent_for(&host, "seed-pod").is_empty());
}
