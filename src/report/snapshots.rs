//! Each renderer over one recorded event sequence: a deploy that failed on
//! ELB health checks and was rolled back. Volatile text (timestamps) is left
//! out by construction, so the expected output is written out in full.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

const OLD: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7";
const NEW: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8";

fn failed_and_rolled_back() -> Vec<Event> {
    let reason = "target 10.0.0.5:8080 in web is unhealthy (Target.FailedHealthChecks) for 31s, past the 30s grace";
    vec![
        Event::PhaseStarted { phase: Phase::Plan },
        Event::PhaseFinished {
            phase: Phase::Plan,
            elapsed: Duration::from_millis(400),
        },
        Event::Info {
            message: "repo/web:abc1234 is already in ECR (sha256:feed): skipping build and push"
                .into(),
        },
        Event::PhaseStarted {
            phase: Phase::Register,
        },
        Event::TaskDefinitionRegistered { arn: NEW.into() },
        Event::PhaseFinished {
            phase: Phase::Register,
            elapsed: Duration::from_millis(200),
        },
        Event::PhaseStarted {
            phase: Phase::Watch,
        },
        Event::TaskChanged {
            task: "n1".into(),
            revision: "web:8".into(),
            status: "RUNNING".into(),
            detail: Some("ip 10.0.0.5".into()),
        },
        Event::Waiting {
            what: "0/1 targets healthy (10.0.0.5:8080 in web initial)".into(),
        },
        Event::Waiting {
            what: "0/1 targets healthy (10.0.0.5:8080 in web initial)".into(),
        },
        Event::TargetChanged {
            target_group: "web".into(),
            target: "10.0.0.5:8080".into(),
            state: "unhealthy".into(),
            reason: Some("Target.FailedHealthChecks".into()),
        },
        Event::Verdict {
            healthy: false,
            reason: reason.into(),
            failure: None,
        },
        Event::PhaseFinished {
            phase: Phase::Watch,
            elapsed: Duration::from_secs(40),
        },
        Event::RollbackStarted {
            to: OLD.into(),
            reason: reason.into(),
        },
        Event::RollbackFinished {
            healthy: true,
            reason: "1/1 new tasks running on web:7, healthy in 1 target group(s)".into(),
            failure: None,
        },
        Event::Result(Box::new(Outcome {
            command: "deploy".into(),
            sha: Some("abc1234".into()),
            image: Some("repo/web:abc1234".into()),
            digest: Some("sha256:feed".into()),
            previous_task_definition: Some(OLD.into()),
            new_task_definition: Some(NEW.into()),
            conclusion: crate::conclusion::Conclusion::RolledBack(
                crate::conclusion::RollbackCause::DeployFailed,
            ),
            reason: Some(reason.into()),
            rollback: Some(RollbackOutcome {
                to: OLD.into(),
                healthy: true,
                reason: "healthy".into(),
                by: crate::outcome::RolledBackBy::Shipit,
                failure: None,
                interrupted: None,
            }),
            failure: None,
            watch: Some(WatchStats {
                polls: 9,
                aws_calls: 45,
            }),
            tasks: vec![],
            timings: vec![(Phase::Plan, 0.4).into(), (Phase::Watch, 40.0).into()],
            aws_api_calls: Some(crate::api_calls::ApiCallCount {
                total: 47,
                by_operation: [("ECS.DescribeServices".to_string(), 10)]
                    .into_iter()
                    .collect(),
            }),
            services: Vec::new(),
            snapshots: Vec::new(),
        })),
    ]
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn render(reporter: &dyn Reporter) {
    for event in failed_and_rolled_back() {
        reporter.emit(&event);
    }
    reporter.finish();
}

#[test]
fn lines_one_per_change_no_repeats_no_ansi() {
    let buf = Buf::default();
    render(&Lines::new(Box::new(buf.clone()), Verbosity::Normal, false));
    let expected = "\
==> plan
    plan done in 0.4s
repo/web:abc1234 is already in ECR (sha256:feed): skipping build and push
==> register task definition
registered arn:aws:ecs:us-east-1:123456789012:task-definition/web:8
    register task definition done in 0.2s
==> watch rollout
task n1 (web:8): RUNNING — ip 10.0.0.5
waiting: 0/1 targets healthy (10.0.0.5:8080 in web initial)
target 10.0.0.5:8080 in web: unhealthy (Target.FailedHealthChecks)
verdict: FAILED — target 10.0.0.5:8080 in web is unhealthy (Target.FailedHealthChecks) for 31s, past the 30s grace
    watch rollout done in 40.0s
rolling back to arn:aws:ecs:us-east-1:123456789012:task-definition/web:7: target 10.0.0.5:8080 in web is unhealthy (Target.FailedHealthChecks) for 31s, past the 30s grace
rollback healthy — 1/1 new tasks running on web:7, healthy in 1 target group(s)
";
    assert_eq!(buf.text(), expected);
    assert!(!buf.text().contains('\x1b'));
}

#[test]
fn quiet_lines_keep_only_verdicts_warnings_and_rollback() {
    let buf = Buf::default();
    render(&Lines::new(Box::new(buf.clone()), Verbosity::Quiet, false));
    assert_eq!(buf.text().lines().count(), 3, "{}", buf.text());
    assert!(buf.text().starts_with("verdict: FAILED"));
}

#[test]
fn json_lines_have_a_type_and_the_result_goes_to_its_own_stream() {
    let (events, result) = (Buf::default(), Buf::default());
    render(&Json::new(
        Box::new(events.clone()),
        Box::new(result.clone()),
    ));
    let types: Vec<String> = events
        .text()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(types.len(), 15);
    assert_eq!(types[0], "phase_started");
    assert!(
        types.contains(&"verdict".to_string()) && types.contains(&"rollback_finished".to_string())
    );
    let mut result: serde_json::Value = serde_json::from_str(result.text().trim()).unwrap();
    assert!(result.as_object_mut().unwrap().remove("time").is_some());
    assert_eq!(
        result,
        serde_json::json!({
            "type": "result", "command": "deploy", "sha": "abc1234", "image": "repo/web:abc1234", "digest": "sha256:feed",
            "previous_task_definition": OLD, "new_task_definition": NEW, "verdict": "rolled_back",
            "reason": "target 10.0.0.5:8080 in web is unhealthy (Target.FailedHealthChecks) for 31s, past the 30s grace",
            "rollback": {"to": OLD, "healthy": true, "reason": "healthy", "by": "shipit"},
            "exit_code": 1,
            "watch": {"polls": 9, "aws_calls": 45},
            "timings": [{"phase": "plan", "seconds": 0.4}, {"phase": "watch", "seconds": 40.0}],
            "aws_api_calls": {"total": 47, "by_operation": {"ECS.DescribeServices": 10}}
        })
    );
}

#[test]
fn github_actions_groups_errors_summary_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, outputs) = (dir.path().join("summary.md"), dir.path().join("outputs"));
    let buf = Buf::default();
    render(&GithubActions::new(
        Some(summary.clone()),
        Some(outputs.clone()),
        Box::new(buf.clone()),
    ));
    let expected = "\
::group::shipit: plan
::endgroup::
::group::shipit: register task definition
::endgroup::
::group::shipit: watch rollout
::endgroup::
::error title=shipit deploy failed::target 10.0.0.5:8080 in web is unhealthy (Target.FailedHealthChecks) for 31s, past the 30s grace
";
    assert_eq!(buf.text(), expected);
    assert_eq!(
        std::fs::read_to_string(outputs).unwrap(),
        format!("image=repo/web:abc1234\ndigest=sha256:feed\ntask-definition-arn={NEW}\nprevious-task-definition-arn={OLD}\nverdict=rolled_back\n")
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.starts_with("### ❌ shipit deploy: rolled_back\n"),
        "{summary}"
    );
    assert!(
        summary.contains("| reason | `target 10.0.0.5:8080 in web is unhealthy"),
        "{summary}"
    );
    assert!(
        summary.contains(
            "| rollback | healthy on `arn:aws:ecs:us-east-1:123456789012:task-definition/web:7`"
        ),
        "{summary}"
    );
}

/// A deploy whose `--before` task exited 3: every renderer shows the task's
/// lines, its failure and (GitHub) its ARN and exit code.
fn before_failed() -> Vec<Event> {
    let task = "arn:aws:ecs:us-east-1:123456789012:task/prod/3f0e5a6b7c8d4e9f";
    let reason = "container `app` exited with code 3";
    vec![
        Event::PhaseStarted {
            phase: Phase::Before,
        },
        Event::OneOffStarted {
            label: "before".into(),
            task: task.into(),
            task_definition: NEW.into(),
            container: "app".into(),
            command: vec!["sh".into(), "-c".into(), "bin/migrate && exit 3".into()],
        },
        Event::OneOffLog {
            label: "before".into(),
            task: task.into(),
            container: "app".into(),
            line: "migrating".into(),
        },
        Event::OneOffLog {
            label: "before".into(),
            task: task.into(),
            container: "app".into(),
            line: "migrating".into(),
        },
        Event::OneOffFinished {
            label: "before".into(),
            task: Some(task.into()),
            success: false,
            exit_code: Some(3),
            reason: reason.into(),
        },
        Event::PhaseFinished {
            phase: Phase::Before,
            elapsed: Duration::from_millis(2100),
        },
        Event::Result(Box::new(Outcome {
            command: "deploy".into(),
            new_task_definition: Some(NEW.into()),
            conclusion: crate::conclusion::Conclusion::BeforeFailed,
            reason: Some(format!(
                "before: {reason}; the service `web` was not changed"
            )),
            tasks: vec![crate::outcome::TaskOutcome {
                label: "before".into(),
                task_arn: Some(task.into()),
                task_definition: NEW.into(),
                container: "app".into(),
                command: vec!["bin/migrate".into()],
                success: false,
                exit_code: Some(3),
                reason: reason.into(),
                seconds: 2.1,
                last_lines: vec!["12:00:01Z migrating".into()],
            }],
            timings: vec![(Phase::Before, 2.1).into()],
            ..Outcome::default()
        })),
    ]
}

#[test]
fn a_one_off_tasks_lines_are_all_printed_marked_as_its_own() {
    let buf = Buf::default();
    let lines = Lines::new(Box::new(buf.clone()), Verbosity::Normal, false);
    for event in before_failed() {
        lines.emit(&event);
    }
    let expected = "\
==> before-update task
before: started task 3f0e5a6b of web:8 (app: sh -c 'bin/migrate && exit 3')
    [before] migrating
    [before] migrating
before: FAILED — container `app` exited with code 3
    before-update task done in 2.1s
";
    assert_eq!(buf.text(), expected);
    let quiet = Buf::default();
    let lines = Lines::new(Box::new(quiet.clone()), Verbosity::Quiet, false);
    for event in before_failed() {
        lines.emit(&event);
    }
    assert_eq!(
        quiet.text(),
        "before: FAILED — container `app` exited with code 3\n"
    );
}

#[test]
fn a_one_off_task_is_in_the_json_result_and_the_github_summary() {
    let (events, result) = (Buf::default(), Buf::default());
    let json = Json::new(Box::new(events.clone()), Box::new(result.clone()));
    for event in before_failed() {
        json.emit(&event);
    }
    let result: serde_json::Value = serde_json::from_str(result.text().trim()).unwrap();
    assert_eq!(result["verdict"], "before_failed");
    assert_eq!(result["exit_code"], 1);
    assert_eq!(result["tasks"][0]["exit_code"], 3);
    assert_eq!(
        result["tasks"][0]["task_arn"],
        "arn:aws:ecs:us-east-1:123456789012:task/prod/3f0e5a6b7c8d4e9f"
    );
    assert_eq!(result["timings"][0]["phase"], "before");
    assert!(
        events.text().contains(r#""type":"one_off_log""#),
        "{}",
        events.text()
    );

    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let buf = Buf::default();
    let github = GithubActions::new(Some(summary.clone()), None, Box::new(buf.clone()));
    for event in before_failed() {
        github.emit(&event);
    }
    assert!(
        buf.text()
            .contains("::error title=shipit before failed::container `app` exited with code 3"),
        "{}",
        buf.text()
    );
    let summary = std::fs::read_to_string(summary).unwrap();
    assert!(
        summary.contains("| before | `arn:aws:ecs:us-east-1:123456789012:task/prod/3f0e5a6b7c8d4e9f` exit 3 in 2.1s: container `app` exited with code 3 |"),
        "{summary}"
    );
}
