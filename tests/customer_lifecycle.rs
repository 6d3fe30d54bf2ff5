//! Customer lifecycle over HTTP (issue 3): update with validation and document corrections,
//! KYC changes with history, closure refused while products are open, merges of two records of
//! one person keeping history; a refused request writes nothing.

mod common;

use common::*;
use serde_json::{json, Value};

// Valid resident ID numbers (ISO 7064 MOD 11-2 check characters).
const DOC_A: &str = "110105198001010016";
const DOC_B: &str = "110105199002020026";
const DOC_A2: &str = "310101198503030035";
const DOC_C: &str = "440305199204040049";
const DOC_D: &str = "110105194912310038";
const DOC_E: &str = "11010519491231002X";

async fn register(server: &Server, name: &str, id_number: &str, phone: Option<&str>) -> String {
    let mut body = json!({"kind": "individual", "name": name, "id_number": id_number});
    if let Some(phone) = phone {
        body["phone"] = json!(phone);
    }
    let (status, created) = server.call("POST", "/v1/customers", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn get(server: &Server, id: &str) -> Value {
    let (status, body) = server.call("GET", &format!("/v1/customers/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

async fn events(server: &Server, id: &str) -> Vec<Value> {
    let (status, history) = server.call("GET", &format!("/v1/customers/{id}/history"), None).await;
    assert_eq!(status, 200, "{history}");
    history["events"].as_array().unwrap().clone()
}

async fn listed(server: &Server, query: &str) -> Vec<String> {
    let (status, page) = server.call("GET", &format!("/v1/customers{query}"), None).await;
    assert_eq!(status, 200, "{page}");
    page["customers"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn update_validates_and_document_corrections_do_not_collide() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let a = register(&server, "王五", DOC_A, Some("13800000001")).await;
        let b = register(&server, "赵六", DOC_B, None).await;
        let path = format!("/v1/customers/{a}");

        let (status, updated) =
            server.call("PATCH", &path, Some(json!({"name": " 王五一 ", "phone": "+86 139 0000 0002"}))).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!((updated["name"].as_str(), updated["phone"].as_str()), (Some("王五一"), Some("+8613900000002")));
        assert_eq!(updated["status"], "active");

        // Refused requests write nothing, not even the valid part of the change.
        for (body, status, expected) in [
            (json!({"phone": "12345"}), 422, "invalid_phone"),
            (json!({"phone": "+1 2025550123"}), 422, "invalid_phone"),
            (json!({"name": "", "phone": "13700000003"}), 422, "invalid_name"),
            (json!({"name": "x".repeat(101)}), 422, "invalid_name"),
            (json!({"phone": "13700000003", "id_number": "110105198001010017"}), 422, "invalid_id_number"),
            (json!({"phone": "13700000003", "colour": "blue"}), 422, "unknown_field"),
            (json!({}), 422, "empty_update"),
            (json!({"name": "王五二", "id_number": DOC_B}), 409, "customer_exists"),
        ] {
            let (got, response) = server.call("PATCH", &path, Some(body.clone())).await;
            assert_eq!((got, code(&response)), (status, Some(expected)), "{body} -> {response}");
            if expected == "customer_exists" {
                let message = response["error"]["message"].as_str().unwrap();
                assert!(message.contains(&b) && message.contains("merge"), "{response}");
                assert_eq!(response["error"]["details"]["existing_customer_id"], b.as_str());
            }
        }
        let seen = get(&server, &a).await;
        assert_eq!((seen["name"].as_str(), seen["phone"].as_str()), (Some("王五一"), Some("+8613900000002")));
        assert_eq!(seen["id_number"], DOC_A);

        // A correction of the document is validated and recorded.
        let (status, corrected) =
            server.call("PATCH", &path, Some(json!({"id_number": DOC_A2, "note": "typo at the branch"}))).await;
        assert_eq!(status, 200, "{corrected}");
        assert_eq!(corrected["id_number"], DOC_A2);
        // The old document is free again; the new one is taken.
        let (status, body) = server
            .call("POST", "/v1/customers", Some(json!({"kind": "individual", "name": "X", "id_number": DOC_A2})))
            .await;
        assert_eq!((status, code(&body)), (409, Some("customer_exists")));
        let history = events(&server, &a).await;
        let kinds: Vec<&str> = history.iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["name_changed", "phone_changed", "id_number_corrected"], "{history:?}");
        assert_eq!(history[2]["from"], DOC_A);
        assert_eq!(history[2]["note"], "typo at the branch");
        assert_eq!(history[2]["actor_role"], "admin");
        assert!(!history[2]["actor_key_id"].as_str().unwrap().is_empty());

        // A teller may update contact data but not correct documents or change KYC, and sees
        // the history masked.
        let (_, teller) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "branch app", "role": "teller"}))).await;
        let teller = teller["key"].as_str().unwrap().to_string();
        let (status, body) = server.call_as(Some(&teller), "PATCH", &path, Some(json!({"phone": "13700000003"}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["masked"], true);
        let (status, _) = server.call_as(Some(&teller), "PATCH", &path, Some(json!({"id_number": DOC_C}))).await;
        assert_eq!(status, 403);
        let (status, _) =
            server.call_as(Some(&teller), "PUT", &format!("{path}/kyc"), Some(json!({"status": "verified"}))).await;
        assert_eq!(status, 403);
        let (status, _) = server.call_as(Some(&teller), "DELETE", &path, None).await;
        assert_eq!(status, 403);
        let (status, masked) = server.call_as(Some(&teller), "GET", &format!("{path}/history"), None).await;
        assert_eq!(status, 200, "{masked}");
        let first = &masked["events"][0];
        assert_eq!(first["event"], "name_changed");
        assert_ne!(first["from"], "王五");
        assert!(!masked["events"][2]["from"].as_str().unwrap().contains("19800101"), "{masked}");

        let unknown = format!("/v1/customers/C-{}", uuid::Uuid::now_v7());
        let (status, body) = server.call("PATCH", &unknown, Some(json!({"name": "Y"}))).await;
        assert_eq!((status, code(&body)), (404, Some("customer_not_found")));
    }
}

#[tokio::test]
async fn kyc_changes_are_checked_and_kept_in_history() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let a = register(&server, "钱七", DOC_A, None).await;
        let kyc = format!("/v1/customers/{a}/kyc");

        let (status, body) = server.call("PUT", &kyc, Some(json!({"status": "approved"}))).await;
        assert_eq!((status, code(&body)), (422, Some("invalid_kyc_status")));
        let message = body["error"]["message"].as_str().unwrap();
        for allowed in ["not_started", "pending", "verified", "rejected", "expired"] {
            assert!(message.contains(allowed), "{message}");
        }
        let (status, body) = server.call("PUT", &kyc, Some(json!({"status": "pending"}))).await;
        assert_eq!((status, body["kyc_status"].as_str()), (200, Some("pending")), "{body}");
        // A pending review cannot expire, and a rejection needs a reason.
        let (status, body) = server.call("PUT", &kyc, Some(json!({"status": "expired"}))).await;
        assert_eq!((status, code(&body)), (409, Some("invalid_kyc_transition")));
        let (status, body) = server.call("PUT", &kyc, Some(json!({"status": "rejected"}))).await;
        assert_eq!((status, code(&body)), (422, Some("note_required")));
        let (status, body) =
            server.call("PUT", &kyc, Some(json!({"status": "rejected", "note": "photo unreadable"}))).await;
        assert_eq!(status, 200, "{body}");
        // Rejected must be resubmitted (pending) before it can be verified.
        let (status, body) = server.call("PUT", &kyc, Some(json!({"status": "verified"}))).await;
        assert_eq!((status, code(&body)), (409, Some("invalid_kyc_transition")));
        assert_eq!(get(&server, &a).await["kyc_status"], "rejected");
        for step in ["pending", "verified", "verified"] {
            let (status, body) = server.call("PUT", &kyc, Some(json!({"status": step, "note": "branch"}))).await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = server.call("PUT", &kyc, Some(json!({"status": "not_started"}))).await;
        assert_eq!((status, code(&body)), (409, Some("invalid_kyc_transition")));
        let (status, body) = server.call("PUT", &kyc, Some(json!({"status": "verified", "by": "me"}))).await;
        assert_eq!((status, code(&body)), (422, Some("unknown_field")));

        let history = events(&server, &a).await;
        let steps: Vec<(&str, &str)> =
            history.iter().map(|e| (e["from"].as_str().unwrap(), e["to"].as_str().unwrap())).collect();
        // Setting the current status again is not a change.
        assert_eq!(
            steps,
            [("not_started", "pending"), ("pending", "rejected"), ("rejected", "pending"), ("pending", "verified")]
        );
        assert!(history.iter().all(|e| e["event"] == "kyc_changed" && e["actor_role"] == "admin"));
        assert_eq!(history[1]["note"], "photo unreadable");
        assert!(history[0]["at"].as_i64().unwrap() <= history[3]["at"].as_i64().unwrap());

        // Every new endpoint is documented.
        let (status, doc) = server.call("GET", "/openapi.json", None).await;
        assert_eq!(status, 200);
        let paths = &doc["paths"];
        assert!(paths["/v1/customers/{id}"]["patch"].is_object() && paths["/v1/customers/{id}"]["delete"].is_object());
        for (path, method) in [
            ("/v1/customers/{id}/kyc", "put"),
            ("/v1/customers/{id}/history", "get"),
            ("/v1/customers/{id}/merge", "post"),
        ] {
            assert!(paths[path][method].is_object(), "{path} {method} missing from the OpenAPI document");
        }
    }
}

#[tokio::test]
async fn closing_is_refused_while_a_balance_is_open_and_hides_the_customer() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let a = register(&server, "孙八", DOC_A, None).await;
        let other = register(&server, "周九", DOC_B, None).await;
        let deposit = open(&server, common::deposit(&a)).await;
        let cash = open(&server, gl("gl.cash")).await;
        let (status, body) = server.call("POST", "/v1/transfers", Some(transfer(&cash, &deposit, 1000))).await;
        assert_eq!(status, 201, "{body}");

        let path = format!("/v1/customers/{a}");
        let (status, body) = server.call("DELETE", &path, Some(json!({"reason": "customer request"}))).await;
        assert_eq!((status, code(&body)), (409, Some("customer_has_open_products")), "{body}");
        assert_eq!(body["error"]["details"]["open_accounts_with_balance"], 1);
        let seen = get(&server, &a).await;
        assert_eq!((seen["status"].as_str(), &seen["closed_at"]), (Some("active"), &Value::Null));
        assert!(events(&server, &a).await.is_empty());

        // Paid out: a zero balance does not block closure.
        let (status, body) = server.call("POST", "/v1/transfers", Some(transfer(&deposit, &cash, 1000))).await;
        assert_eq!(status, 201, "{body}");
        let (status, closed) = server.call("DELETE", &path, Some(json!({"reason": "customer request"}))).await;
        assert_eq!(status, 200, "{closed}");
        assert_eq!(closed["status"], "closed");
        assert!(closed["closed_at"].as_i64().is_some());
        // Idempotent; the record is kept and still readable by id.
        let (status, again) = server.call("DELETE", &path, None).await;
        assert_eq!((status, &again["closed_at"]), (200, &closed["closed_at"]));
        assert_eq!(get(&server, &a).await["status"], "closed");
        let history = events(&server, &a).await;
        assert_eq!(history.len(), 1);
        assert_eq!(
            (history[0]["event"].as_str(), history[0]["note"].as_str()),
            (Some("closed"), Some("customer request"))
        );

        // Gone from search by default, listed on request.
        assert_eq!(listed(&server, "").await, vec![other]);
        assert_eq!(listed(&server, "?status=closed").await, vec![a.clone()]);
        assert_eq!(listed(&server, "?status=all").await.len(), 2);
        let (status, body) = server.call("GET", "/v1/customers?status=gone", None).await;
        assert_eq!((status, code(&body)), (400, Some("invalid_query")));

        // A closed customer takes no changes.
        let (status, body) = server.call("PATCH", &path, Some(json!({"name": "孙八八"}))).await;
        assert_eq!((status, code(&body)), (409, Some("customer_closed")));
        let (status, body) = server.call("PUT", &format!("{path}/kyc"), Some(json!({"status": "verified"}))).await;
        assert_eq!((status, code(&body)), (409, Some("customer_closed")));
        let (status, body) = server
            .call("POST", &format!("{path}/identities"), Some(json!({"channel": "web", "external_id": "w-1"})))
            .await;
        assert_eq!((status, code(&body)), (409, Some("customer_closed")));
    }
}

#[tokio::test]
async fn merge_joins_two_records_of_one_person_keeping_history() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        // The same person registered twice, once with a wrong (but well-formed) document.
        let keep = register(&server, "李四", DOC_C, None).await;
        let dup = register(&server, "李四", DOC_D, Some("13600000004")).await;
        let stranger = register(&server, "王六", DOC_E, None).await;
        let (status, body) =
            server.call("PUT", &format!("/v1/customers/{dup}/kyc"), Some(json!({"status": "verified"}))).await;
        assert_eq!(status, 200, "{body}");
        let link = json!({"channel": "mobile_app", "external_id": "u-42"});
        let (status, body) = server.call("POST", &format!("/v1/customers/{dup}/identities"), Some(link.clone())).await;
        assert_eq!(status, 201, "{body}");

        let merge = format!("/v1/customers/{keep}/merge");
        let unknown = format!("C-{}", uuid::Uuid::now_v7());
        for (path, body, status, expected) in [
            // Different documents need a reason asserting they are one person.
            (&merge, json!({"from": dup}), 409, "merge_conflict"),
            // Different names: not the same person whatever the caller says.
            (&merge, json!({"from": stranger, "reason": "same person"}), 409, "merge_conflict"),
            (&merge, json!({"from": keep, "reason": "x"}), 422, "merge_into_self"),
            (&merge, json!({"from": "nobody", "reason": "x"}), 422, "invalid_customer_id"),
            (&merge, json!({"from": unknown, "reason": "x"}), 404, "customer_not_found"),
            (&merge, json!({"from": dup, "reason": "x", "force": true}), 422, "unknown_field"),
        ] {
            let (got, response) = server.call("POST", path, Some(body.clone())).await;
            assert_eq!((got, code(&response)), (status, Some(expected)), "{body} -> {response}");
        }
        // Nothing was written by the refused merges.
        assert_eq!(get(&server, &dup).await["status"], "active");
        assert_eq!(get(&server, &keep).await["kyc_status"], "not_started");
        let (status, body) = server.call("POST", &format!("/v1/customers/{keep}/identities"), Some(link.clone())).await;
        assert_eq!((status, code(&body)), (409, Some("identity_taken")));

        let (status, merged) =
            server.call("POST", &merge, Some(json!({"from": dup, "reason": "wrong ID number at registration"}))).await;
        assert_eq!(status, 200, "{merged}");
        assert_eq!(merged["identities_moved"], 1);
        // The survivor takes the stronger KYC status and the missing phone.
        assert_eq!(merged["survivor"]["kyc_status"], "verified");
        assert_eq!(merged["survivor"]["phone"], "+8613600000004");
        assert_eq!(merged["survivor"]["id_number"], DOC_C);
        let absorbed = get(&server, &dup).await;
        assert_eq!(
            (absorbed["status"].as_str(), absorbed["merged_into"].as_str()),
            (Some("merged"), Some(keep.as_str()))
        );
        let survivor = get(&server, &keep).await;
        assert_eq!((survivor["kyc_status"].as_str(), survivor["status"].as_str()), (Some("verified"), Some("active")));

        // The channel identity now belongs to the survivor.
        let (status, body) = server.call("POST", &format!("/v1/customers/{keep}/identities"), Some(link.clone())).await;
        assert_eq!(status, 201, "{body}");

        // History on both records.
        let kept = events(&server, &keep).await;
        let merged_in = kept.iter().find(|e| e["event"] == "merged_in").expect("merged_in event");
        assert_eq!(
            (merged_in["other_customer_id"].as_str(), merged_in["note"].as_str()),
            (Some(dup.as_str()), Some("wrong ID number at registration"))
        );
        assert!(kept.iter().any(|e| e["event"] == "kyc_changed" && e["to"] == "verified"));
        assert!(kept.iter().any(|e| e["event"] == "phone_changed" && e["to"] == "+8613600000004"));
        let gone = events(&server, &dup).await;
        assert_eq!(gone.last().unwrap()["event"], "merged_into");
        assert_eq!(gone.last().unwrap()["other_customer_id"], keep.as_str());
        assert_eq!(gone[0]["event"], "kyc_changed");

        // A merged record cannot be merged, changed or merged into; its document names the survivor.
        let (status, body) = server.call("POST", &merge, Some(json!({"from": dup, "reason": "again"}))).await;
        assert_eq!((status, code(&body)), (409, Some("customer_merged")));
        assert!(body["error"]["message"].as_str().unwrap().contains(&keep));
        let (status, body) = server
            .call("POST", &format!("/v1/customers/{dup}/merge"), Some(json!({"from": stranger, "reason": "x"})))
            .await;
        assert_eq!((status, code(&body)), (409, Some("customer_merged")));
        let (status, body) = server.call("PATCH", &format!("/v1/customers/{dup}"), Some(json!({"name": "李四"}))).await;
        assert_eq!((status, code(&body)), (409, Some("customer_merged")));
        let (status, body) = server
            .call("POST", "/v1/customers", Some(json!({"kind": "individual", "name": "李四", "id_number": DOC_D})))
            .await;
        assert_eq!((status, code(&body)), (409, Some("customer_exists")));
        assert!(body["error"]["message"].as_str().unwrap().contains(&keep), "{body}");

        // Merged records leave search; a closed record cannot be merged.
        let mut active = listed(&server, "").await;
        active.sort();
        let mut expected = vec![keep.clone(), stranger.clone()];
        expected.sort();
        assert_eq!(active, expected);
        assert_eq!(listed(&server, "?status=merged").await, vec![dup.clone()]);
        let (status, _) = server.call("DELETE", &format!("/v1/customers/{stranger}"), None).await;
        assert_eq!(status, 200);
        let (status, body) = server.call("POST", &merge, Some(json!({"from": stranger, "reason": "x"}))).await;
        assert_eq!((status, code(&body)), (409, Some("customer_closed")));
    }
}

#[tokio::test]
async fn closing_a_survivor_checks_the_accounts_of_records_merged_into_it() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let keep = register(&server, "吴十", DOC_A, None).await;
        let dup = register(&server, "吴十", DOC_B, None).await;
        let deposit = open(&server, common::deposit(&dup)).await;
        let cash = open(&server, gl("gl.cash")).await;
        let (status, _) = server.call("POST", "/v1/transfers", Some(transfer(&cash, &deposit, 500))).await;
        assert_eq!(status, 201);
        let (status, body) = server
            .call("POST", &format!("/v1/customers/{keep}/merge"), Some(json!({"from": dup, "reason": "duplicate"})))
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.call("DELETE", &format!("/v1/customers/{keep}"), None).await;
        assert_eq!((status, code(&body)), (409, Some("customer_has_open_products")), "{body}");
        assert_eq!(get(&server, &keep).await["status"], "active");
    }
}
