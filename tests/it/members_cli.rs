//! `portcullis images members …` end to end (real binary, real SQLite file):
//! the owner shares a `shared` image, the member answers, the owner removes
//! it; the repository's rules give the refusals (exit 1) and bad arguments
//! are usage errors (exit 2).

#![allow(clippy::unwrap_used)]

use crate::images::images;
use crate::ingest::Env;

#[test]
fn members_are_shared_answered_and_removed_through_the_cli() {
    let env = Env::new();
    let (code, created) = images(
        &env,
        &[
            "create",
            "--name",
            "to-share",
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--visibility",
            "shared",
            "--project",
            "p1",
        ],
    );
    assert_eq!(code, 0, "{created}");
    let id = created["id"].as_str().unwrap();
    let owner = |args: &[&str]| {
        let mut full = vec!["members"];
        full.extend_from_slice(args);
        full.extend(["--project", "p1"]);
        images(&env, &full)
    };
    let member = |args: &[&str]| {
        let mut full = vec!["members"];
        full.extend_from_slice(args);
        full.extend(["--project", "p2"]);
        images(&env, &full)
    };

    let (code, added) = owner(&["add", id, "p2"]);
    assert_eq!(code, 0, "{added}");
    assert_eq!(added["member_id"], "p2");
    assert_eq!(added["image_id"], id);
    assert_eq!(added["status"], "pending");
    assert_eq!(added["schema"], "/v2/schemas/member");

    // The owner cannot answer for the member (exit 1, forbidden).
    let (code, refused) = owner(&["set", id, "p2", "accepted"]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["error"]["kind"], "forbidden", "{refused}");
    // A status that is not one of Glance's: usage (exit 2).
    let (code, bad) = member(&["set", id, "p2", "maybe"]);
    assert_eq!(code, 2, "{bad}");
    assert_eq!(bad["error"]["kind"], "usage", "{bad}");

    let (code, accepted) = member(&["set", id, "p2", "accepted"]);
    assert_eq!(code, 0, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    let (code, shown) = owner(&["show", id, "p2"]);
    assert_eq!(code, 0, "{shown}");
    assert_eq!(shown["status"], "accepted");
    let (code, listed) = owner(&["list", id]);
    assert_eq!(code, 0, "{listed}");
    assert_eq!(listed["schema"], "/v2/schemas/members");
    assert_eq!(listed["members"].as_array().unwrap().len(), 1, "{listed}");

    // A member cannot remove itself; the owner can, and then p2 sees nothing.
    let (code, refused) = member(&["remove", id, "p2"]);
    assert_eq!(code, 1, "{refused}");
    let (code, removed) = owner(&["remove", id, "p2"]);
    assert_eq!(code, 0, "{removed}");
    assert_eq!(removed["member_id"], "p2");
    let (code, gone) = images(&env, &["show", id, "--project", "p2"]);
    assert_eq!(code, 1, "{gone}");
    assert_eq!(gone["error"]["kind"], "not_found", "{gone}");
    let (code, listed) = owner(&["list", id]);
    assert_eq!(code, 0, "{listed}");
    assert_eq!(listed["members"], serde_json::json!([]), "{listed}");
}
