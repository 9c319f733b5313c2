//! `app.bsky.actor.getPreferences` / `putPreferences`, kept by the PDS per account.

use reqwest::Method;
use serde_json::json;

app_test!(preferences_round_trip_and_personal_details_stay_private, |app| {
    let account = app.create_account("bella").await;
    let token = account["accessJwt"].as_str().expect("access");
    let prefs = json!({ "preferences": [
        { "$type": "app.bsky.actor.defs#adultContentPref", "enabled": false },
        { "$type": "app.bsky.actor.defs#personalDetailsPref", "birthDate": "1990-01-01T00:00:00.000Z" },
        { "$type": "app.bsky.actor.defs#someFuturePref", "setting": [1, 2] }
    ] });
    let (status, body) = app.call(Method::POST, "app.bsky.actor.putPreferences", Some(token), Some(&prefs)).await;
    assert_eq!(status, 200, "{body}");
    let (status, got) = app.call(Method::GET, "app.bsky.actor.getPreferences", Some(token), None).await;
    assert_eq!(status, 200, "{got}");
    let mut expected = prefs["preferences"].as_array().expect("prefs").clone();
    // Derived from the birth date when read, as the reference PDS does; never stored.
    expected.push(json!({
        "$type": "app.bsky.actor.defs#declaredAgePref", "isOverAge13": true, "isOverAge16": true, "isOverAge18": true
    }));
    assert_eq!(got["preferences"], json!(expected), "kept exactly, unknown types included");

    let bad = json!({ "preferences": [{ "$type": "com.example.pref", "x": 1 }] });
    let (status, _) = app.call(Method::POST, "app.bsky.actor.putPreferences", Some(token), Some(&bad)).await;
    assert_eq!(status, 400, "only app.bsky preferences");

    // An ordinary app password neither sees nor overwrites personal details.
    let limited = app.app_password_session(token, "bella.test", "app").await;
    let limited = limited.as_str();
    let (_, seen) = app.call(Method::GET, "app.bsky.actor.getPreferences", Some(limited), None).await;
    let seen: Vec<&str> =
        seen["preferences"].as_array().expect("prefs").iter().filter_map(|p| p["$type"].as_str()).collect();
    assert!(!seen.contains(&"app.bsky.actor.defs#personalDetailsPref"), "{seen:?}");
    assert!(seen.contains(&"app.bsky.actor.defs#declaredAgePref"), "the derived age is not private: {seen:?}");
    let replace = json!({ "preferences": [{ "$type": "app.bsky.actor.defs#adultContentPref", "enabled": true }] });
    let (status, _) = app.call(Method::POST, "app.bsky.actor.putPreferences", Some(limited), Some(&replace)).await;
    assert_eq!(status, 200);
    let (_, full) = app.call(Method::GET, "app.bsky.actor.getPreferences", Some(token), None).await;
    let types: Vec<&str> =
        full["preferences"].as_array().expect("prefs").iter().filter_map(|p| p["$type"].as_str()).collect();
    assert!(types.contains(&"app.bsky.actor.defs#personalDetailsPref"), "{full}");
    assert!(types.contains(&"app.bsky.actor.defs#adultContentPref"));
    let (status, _) = app.call(Method::GET, "app.bsky.actor.getPreferences", None, None).await;
    assert_eq!(status, 401);
});
