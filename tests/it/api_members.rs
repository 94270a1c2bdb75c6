//! HTTP tests of the image member endpoints (image sharing) through
//! `oneshot` on `api::app()` over a real data directory, with callers told
//! apart by noauth's identity headers: every endpoint, Glance's statuses
//! and messages, and what each project then sees.

use axum::body::Body;
use axum::http::{Method, StatusCode};

use super::api::{Answer, TestApi};

const JSON: (&str, &str) = ("content-type", "application/json");
const ACCEPT_JSON: (&str, &str) = ("accept", "application/json");

/// A caller: a project with the `member` role (noauth identity headers).
#[derive(Clone, Copy)]
struct As(&'static str);

impl As {
    fn headers(self) -> [(&'static str, &'static str); 4] {
        [
            ("x-project-id", self.0),
            ("x-roles", "member,reader"),
            JSON,
            ACCEPT_JSON,
        ]
    }

    async fn send(self, api: &TestApi, method: Method, path: &str, body: &str) -> Answer {
        api.send_body(method, path, &self.headers(), Body::from(body.to_owned()))
            .await
    }

    async fn get(self, api: &TestApi, path: &str) -> Answer {
        self.send(api, Method::GET, path, "").await
    }
}

const OWNER: As = As("p1");
const P2: As = As("p2");
const P3: As = As("p3");

/// An image owned by `who` with this visibility (created by an
/// administrator: only admins may publicize); its id.
async fn image(api: &TestApi, who: As, visibility: &str) -> String {
    let created = api
        .send_body(
            Method::POST,
            "/v2/images",
            &[JSON, ACCEPT_JSON],
            Body::from(format!(
                r#"{{"name": "m-{visibility}", "disk_format": "raw", "container_format": "bare", "visibility": "{visibility}", "owner": "{}"}}"#,
                who.0
            )),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.json()["id"].as_str().expect("an id").to_owned()
}

async fn add(api: &TestApi, who: As, id: &str, member: &str) -> Answer {
    who.send(
        api,
        Method::POST,
        &format!("/v2/images/{id}/members"),
        &format!(r#"{{"member": "{member}"}}"#),
    )
    .await
}

async fn set_status(api: &TestApi, who: As, id: &str, member: &str, status: &str) -> Answer {
    who.send(
        api,
        Method::PUT,
        &format!("/v2/images/{id}/members/{member}"),
        &format!(r#"{{"status": "{status}"}}"#),
    )
    .await
}

/// The ids of the images `who` lists with this query.
async fn listed(api: &TestApi, who: As, query: &str) -> Vec<String> {
    let page = who.get(api, &format!("/v2/images{query}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    page.json()["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|image| image["id"].as_str().expect("id").to_owned())
        .collect()
}

fn member_ids(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let list = answer.json();
    assert_eq!(list["schema"], "/v2/schemas/members");
    list["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|member| member["member_id"].as_str().expect("member_id").to_owned())
        .collect()
}

#[tokio::test]
async fn sharing_an_image_follows_glance_from_add_to_delete() {
    let api = TestApi::new().await;
    let id = image(&api, OWNER, "shared").await;
    let members = format!("/v2/images/{id}/members");

    // Before sharing, p2 cannot see the image at all.
    assert_eq!(
        P2.get(&api, &format!("/v2/images/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(P2.get(&api, &members).await.status, StatusCode::NOT_FOUND);

    // The owner adds p2: 200 (not 201) with Glance's member document.
    let added = add(&api, OWNER, &id, "p2").await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.header("content-type"), Some("application/json"));
    let member = added.json();
    // Glance's key order, in the body as sent.
    let positions: Vec<usize> = [
        "member_id",
        "image_id",
        "status",
        "created_at",
        "updated_at",
        "schema",
    ]
    .iter()
    .map(|key| added.body.find(&format!("\"{key}\":")).expect(key))
    .collect();
    assert!(positions.is_sorted(), "{}", added.body);
    assert_eq!(member["member_id"], "p2");
    assert_eq!(member["image_id"], id.as_str());
    assert_eq!(member["status"], "pending");
    assert_eq!(member["schema"], "/v2/schemas/member");
    assert!(
        member["created_at"].as_str().unwrap().ends_with('Z'),
        "{member}"
    );
    assert_eq!(add(&api, OWNER, &id, "p3").await.status, StatusCode::OK);

    // Adding p2 again: 409 with Glance's message.
    let again = add(&api, OWNER, &id, "p2").await;
    assert_eq!(
        (again.status, again.message()),
        (
            StatusCode::CONFLICT,
            format!("Member p2 is duplicated for image {id}")
        )
    );

    // A pending member sees the image by id, not in its default listing.
    assert_eq!(
        P2.get(&api, &format!("/v2/images/{id}")).await.status,
        StatusCode::OK
    );
    assert!(!listed(&api, P2, "").await.contains(&id));
    assert_eq!(
        listed(&api, P2, "?member_status=pending").await,
        std::slice::from_ref(&id)
    );

    // The owner sees every membership, a member only its own.
    let mut all = member_ids(&OWNER.get(&api, &members).await);
    all.sort();
    assert_eq!(all, ["p2", "p3"]);
    assert_eq!(member_ids(&P2.get(&api, &members).await), ["p2"]);
    let shown = OWNER.get(&api, &format!("{members}/p2")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.json()["status"], "pending");
    let other = P2.get(&api, &format!("{members}/p3")).await;
    assert_eq!(
        (other.status, other.message()),
        (
            StatusCode::NOT_FOUND,
            format!("p3 not found in the member list of the image {id}.")
        )
    );

    // Only the member answers for itself.
    let accepted = set_status(&api, P2, &id, "p2", "accepted").await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(accepted.json()["status"], "accepted");
    assert!(listed(&api, P2, "").await.contains(&id));
    assert!(listed(&api, P2, "?visibility=shared").await.contains(&id));
    assert_eq!(
        listed(&api, P2, "?member_status=pending").await,
        Vec::<String>::new()
    );
    let by_owner = set_status(&api, OWNER, &id, "p2", "rejected").await;
    assert_eq!(by_owner.status, StatusCode::FORBIDDEN, "{}", by_owner.body);
    assert!(
        by_owner
            .message()
            .starts_with(&format!("Not allowed to update members for image {id}")),
        "{}",
        by_owner.body
    );
    let for_another = set_status(&api, P2, &id, "p3", "accepted").await;
    assert_eq!(for_another.status, StatusCode::NOT_FOUND);
    assert_eq!(
        P3.get(&api, &format!("{members}/p3")).await.json()["status"],
        "pending"
    );

    // A member neither adds members nor removes itself.
    let by_member = add(&api, P2, &id, "p4").await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    assert!(
        by_member
            .message()
            .starts_with(&format!("Not allowed to create members for image {id}")),
        "{}",
        by_member.body
    );
    let self_removal = P2
        .send(&api, Method::DELETE, &format!("{members}/p2"), "")
        .await;
    assert_eq!(self_removal.status, StatusCode::FORBIDDEN);
    assert!(
        self_removal
            .message()
            .starts_with(&format!("Not allowed to delete members for image {id}")),
        "{}",
        self_removal.body
    );

    // The owner removes p2: 204, and p2 no longer sees the image.
    let removed = OWNER
        .send(&api, Method::DELETE, &format!("{members}/p2"), "")
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    assert!(removed.body.is_empty());
    assert_eq!(
        P2.get(&api, &format!("/v2/images/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let gone = OWNER
        .send(&api, Method::DELETE, &format!("{members}/p2"), "")
        .await;
    assert_eq!(
        (gone.status, gone.message()),
        (
            StatusCode::NOT_FOUND,
            format!("p2 not found in the member list of the image {id}.")
        )
    );
    assert_eq!(member_ids(&OWNER.get(&api, &members).await), ["p3"]);
}

#[tokio::test]
async fn only_shared_images_have_members() {
    let api = TestApi::new().await;
    for visibility in ["private", "public", "community"] {
        let id = image(&api, OWNER, visibility).await;
        let members = format!("/v2/images/{id}/members");
        // Glance 33's messages, recorded on this machine (create, update and
        // delete add the reason, which Glance gives only when listing).
        let refused = |verb: &str| {
            (
                StatusCode::FORBIDDEN,
                format!(
                    "Not allowed to {verb} members for image {id}: Only shared images have members."
                ),
            )
        };
        let list = OWNER.get(&api, &members).await;
        assert_eq!(
            (list.status, list.message()),
            refused("list"),
            "{visibility}"
        );
        let added = add(&api, OWNER, &id, "p2").await;
        assert_eq!(
            (added.status, added.message()),
            refused("create"),
            "{visibility}"
        );
        // Show is a 404, as Glance hides it there.
        let shown = OWNER.get(&api, &format!("{members}/p2")).await;
        assert_eq!(
            (shown.status, shown.message()),
            (
                StatusCode::NOT_FOUND,
                "Only shared images have members.".to_owned()
            ),
            "{visibility}"
        );
        let updated = set_status(&api, OWNER, &id, "p2", "accepted").await;
        assert_eq!(
            (updated.status, updated.message()),
            refused("update"),
            "{visibility}"
        );
        let removed = OWNER
            .send(&api, Method::DELETE, &format!("{members}/p2"), "")
            .await;
        assert_eq!(
            (removed.status, removed.message()),
            refused("delete"),
            "{visibility}"
        );
        // Another project sees a private image not at all; the others it may
        // see, and gets the same refusal.
        let by_other = set_status(&api, P2, &id, "p2", "accepted").await;
        if visibility == "private" {
            assert_eq!(by_other.status, StatusCode::NOT_FOUND);
        } else {
            assert_eq!((by_other.status, by_other.message()), refused("update"));
        }
    }
}

#[tokio::test]
async fn members_of_unknown_images_are_not_found() {
    let api = TestApi::new().await;
    let unknown = "0b4bb2d8-5bd5-4a0c-9a2d-8d0b0f3f1c7e";
    for (method, path, body) in [
        (Method::GET, format!("/v2/images/{unknown}/members"), ""),
        (
            Method::POST,
            format!("/v2/images/{unknown}/members"),
            r#"{"member": "p2"}"#,
        ),
        (Method::GET, format!("/v2/images/{unknown}/members/p2"), ""),
        (
            Method::PUT,
            format!("/v2/images/{unknown}/members/p2"),
            r#"{"status": "accepted"}"#,
        ),
        (
            Method::DELETE,
            format!("/v2/images/{unknown}/members/p2"),
            "",
        ),
    ] {
        let answer = OWNER.send(&api, method.clone(), &path, body).await;
        assert_eq!(
            (answer.status, answer.message()),
            (StatusCode::NOT_FOUND, format!("Image {unknown} not found.")),
            "{method} {path}"
        );
    }
    // Not a UUID: also 404, never 400.
    let answer = OWNER.get(&api, "/v2/images/not-an-id/members").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_member_bodies_are_400_with_glances_messages() {
    let api = TestApi::new().await;
    let id = image(&api, OWNER, "shared").await;
    let members = format!("/v2/images/{id}/members");
    for (body, message) in [
        ("", "Body expected in request."),
        ("{", "Malformed JSON in request body."),
        ("{}", "Member to be added not specified"),
        (r#"{"member": ""}"#, "Member can't be empty"),
        (
            r#"{"member": 5}"#,
            r#"Expected a member in the form: {"member": "image_id"}"#,
        ),
    ] {
        let answer = OWNER.send(&api, Method::POST, &members, body).await;
        assert_eq!(
            (answer.status, answer.message()),
            (StatusCode::BAD_REQUEST, message.to_owned()),
            "{body}"
        );
    }
    let too_long = add(&api, OWNER, &id, &"p".repeat(256)).await;
    assert_eq!(
        too_long.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_long.body
    );
    assert_eq!(add(&api, OWNER, &id, "p2").await.status, StatusCode::OK);
    for (body, message) in [
        ("{}", "Status not specified"),
        (
            r#"{"status": "maybe"}"#,
            r#"Incorrect request: Status must be "pending", "accepted" or "rejected"."#,
        ),
    ] {
        let answer = P2
            .send(&api, Method::PUT, &format!("{members}/p2"), body)
            .await;
        assert_eq!(
            (answer.status, answer.message()),
            (StatusCode::BAD_REQUEST, message.to_owned()),
            "{body}"
        );
    }
    // Nothing changed.
    assert_eq!(
        P2.get(&api, &format!("{members}/p2")).await.json()["status"],
        "pending"
    );
}

#[tokio::test]
async fn member_quota_is_413_and_wrong_methods_405() {
    let config = "[repo.quota]\nimage_member_quota = 1\n";
    let api = TestApi::with_config(Default::default(), config).await;
    let id = image(&api, OWNER, "shared").await;
    assert_eq!(add(&api, OWNER, &id, "p2").await.status, StatusCode::OK);
    let over = add(&api, OWNER, &id, "p3").await;
    assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", over.body);
    assert!(
        over.message()
            .starts_with(&format!("Image member limit exceeded for image {id}")),
        "{}",
        over.body
    );
    let patch = OWNER
        .send(&api, Method::PATCH, &format!("/v2/images/{id}/members"), "")
        .await;
    assert_eq!(
        (patch.status, patch.header("allow")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("GET, POST"))
    );
    let post = OWNER
        .send(
            &api,
            Method::POST,
            &format!("/v2/images/{id}/members/p2"),
            "",
        )
        .await;
    assert_eq!(
        (post.status, post.header("allow")),
        (StatusCode::METHOD_NOT_ALLOWED, Some("GET, PUT, DELETE"))
    );
}

#[tokio::test]
async fn an_admin_manages_members_for_anyone() {
    let api = TestApi::new().await;
    let id = image(&api, OWNER, "shared").await;
    // No identity headers under noauth: an administrator.
    let admin_add = api
        .send_body(
            Method::POST,
            &format!("/v2/images/{id}/members"),
            &[JSON, ACCEPT_JSON],
            Body::from(r#"{"member": "p2"}"#),
        )
        .await;
    assert_eq!(admin_add.status, StatusCode::OK, "{}", admin_add.body);
    let admin_accept = api
        .send_body(
            Method::PUT,
            &format!("/v2/images/{id}/members/p2"),
            &[JSON, ACCEPT_JSON],
            Body::from(r#"{"status": "rejected"}"#),
        )
        .await;
    assert_eq!(admin_accept.status, StatusCode::OK, "{}", admin_accept.body);
    assert_eq!(admin_accept.json()["status"], "rejected");
    // Rejected: visible by id, listed only on request.
    assert!(!listed(&api, P2, "").await.contains(&id));
    assert_eq!(
        listed(&api, P2, "?member_status=rejected").await,
        std::slice::from_ref(&id)
    );
    assert_eq!(listed(&api, P2, "?member_status=all").await, [id]);
}
