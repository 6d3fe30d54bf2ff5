//! Customer register over HTTP: validation, one customer per identity document, masking.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn customers_are_validated_unique_and_masked_by_role() {
    for db in database_urls().await {
        let server = Server::start(&db, &[]).await;
        let person =
            json!({"kind": "individual", "name": "张三丰", "id_number": "11010519491231002X", "phone": "13812345678"});
        let (status, created) = server.call("POST", "/v1/customers", Some(person.clone())).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("C-"));
        // The admin sees personal data in clear, normalised.
        assert_eq!(created["masked"], false);
        assert_eq!(created["phone"], "+8613812345678");

        // One person, one customer id: the same document again is a conflict naming the id.
        let (status, body) = server.call("POST", "/v1/customers", Some(person)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (409, Some("customer_exists")));
        assert!(body["error"]["message"].as_str().unwrap().contains(&id));

        // Malformed documents and phones are rejected with a clear code; nothing is saved.
        for (body, code) in [
            (json!({"kind": "individual", "name": "A", "id_number": "110105194912310021"}), "invalid_id_number"),
            (json!({"kind": "individual", "name": "A", "id_number": "12345"}), "invalid_id_number"),
            (json!({"kind": "sme", "name": "A Co", "id_number": "not-a-code"}), "invalid_id_number"),
            (
                json!({"kind": "individual", "name": "B", "id_number": "11010519491231002X", "phone": "12345"}),
                "invalid_phone",
            ),
            (json!({"kind": "individual", "name": " ", "id_number": "11010519491231002X"}), "invalid_name"),
        ] {
            let (status, response) = server.call("POST", "/v1/customers", Some(body.clone())).await;
            assert_eq!((status, response["error"]["code"].as_str()), (422, Some(code)), "{body} -> {response}");
        }
        let (status, page) = server.call("GET", "/v1/customers", None).await;
        assert_eq!(status, 200);
        assert_eq!(page["customers"].as_array().unwrap().len(), 1);

        // A teller works with customers but sees personal data masked.
        let (_, teller) =
            server.call("POST", "/v1/api-keys", Some(json!({"name": "branch app", "role": "teller"}))).await;
        let teller = teller["key"].as_str().unwrap().to_string();
        let (status, seen) = server.call_as(Some(&teller), "GET", &format!("/v1/customers/{id}"), None).await;
        assert_eq!(status, 200, "{seen}");
        assert_eq!(seen["masked"], true);
        let masked_id = seen["id_number"].as_str().unwrap();
        assert!(masked_id.contains('*') && !masked_id.contains("19491231"), "{seen}");
        let masked_phone = seen["phone"].as_str().unwrap();
        assert!(masked_phone.contains('*') && !masked_phone.contains("1234567"), "{seen}");
        assert_ne!(seen["name"], "张三丰");

        let (status, body) = server.call("GET", "/v1/customers/not-an-id", None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_path")));
        let (status, body) = server.call("GET", &format!("/v1/customers/C-{}", uuid::Uuid::now_v7()), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("customer_not_found")));
    }
}
