//! Bund's masking and domain functions, called over Flight SQL.

use crate::harness::{Server, column_strings};

#[tokio::test]
async fn masking_and_domain_functions_run_over_flight_sql() {
    let server = Server::start();
    let mut c = server.login("admin").await;
    let b = c
        .query(
            "SELECT mask_id_card('310101198503121236'), mask_phone('+8613912345678'), \
             mask_name_cn('欧阳修远'), id_card_valid('11010519491231002X'), \
             id_card_valid('110105194912310021'), district_name('310115'), district_name('310115', 'en')",
        )
        .await
        .unwrap();
    let row: Vec<String> = (0..7).map(|i| column_strings(&b, i)[0].clone()).collect();
    assert_eq!(
        row,
        vec![
            "310101********1236",
            "+86139****5678",
            "欧阳**",
            "true",
            "false",
            "浦东新区",
            "Pudong New Area"
        ]
    );

    // On real data: every generated ID number is valid and masks keep 6 + 4 characters.
    let b = c
        .query(
            "SELECT count(*) FILTER (WHERE id_card_valid(id_card)), count(*), \
             count(*) FILTER (WHERE mask_id_card(id_card) = substr(id_card, 1, 6) || '********' || substr(id_card, 15, 4)) \
             FROM police.residents",
        )
        .await
        .unwrap();
    let counts: Vec<String> = (0..3).map(|i| column_strings(&b, i)[0].clone()).collect();
    assert_eq!(counts[0], counts[1]);
    assert_eq!(counts[2], counts[1]);

    // Clients can discover them.
    let b = c
        .query("SELECT routine_name FROM information_schema.routines WHERE routine_name LIKE 'mask\\_%' ORDER BY routine_name")
        .await
        .unwrap();
    let names = column_strings(&b, 0);
    for f in [
        "mask_email",
        "mask_id_card",
        "mask_keep",
        "mask_name_cn",
        "mask_phone",
    ] {
        assert!(names.contains(&f.to_string()), "{f} missing from {names:?}");
    }
}
