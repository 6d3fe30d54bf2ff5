use super::*;
use proptest::prelude::*;

fn d(s: &str) -> Decimal {
    s.parse().expect("test decimal")
}

fn schema() -> Schema {
    let mut s = Schema::new();
    for (name, ty) in [
        ("kind", Type::String),
        ("months_active", Type::Number),
        ("credit_grade", Type::String),
        ("sum_inflow_90d", Type::Number),
        ("aum", Type::Number),
        ("days_since_last_login", Type::Number),
        ("is_payroll", Type::Bool),
        ("channels", Type::StringList),
        ("name", Type::String),
        ("limit", Type::Number),
    ] {
        s.add(name, ty).expect("valid field");
    }
    s
}

fn sme_row(s: &Schema) -> Row {
    let mut r = s.row();
    r.set(s, "kind", "sme").unwrap();
    r.set(s, "months_active", 30).unwrap();
    r.set(s, "credit_grade", "AA").unwrap();
    r.set(s, "sum_inflow_90d", d("612345.67")).unwrap();
    r.set(s, "aum", d("120000")).unwrap();
    r.set(s, "days_since_last_login", 3).unwrap();
    r.set(s, "is_payroll", false).unwrap();
    r.set(s, "channels", vec!["mobile_app".to_string(), "branch".to_string()]).unwrap();
    r.set(s, "name", "Acme Trading").unwrap();
    r
}

fn eval(src: &str, row: &Row) -> Value {
    compile(src, &schema()).unwrap_or_else(|e| panic!("{src}: {e}")).eval(row)
}

fn err(src: &str) -> CompileError {
    match compile(src, &schema()) {
        Ok(e) => panic!("expected an error for {src}, compiled to {e}"),
        Err(e) => e,
    }
}

#[test]
fn examples_from_the_brief() {
    let s = schema();
    let row = sme_row(&s);
    let rule = compile_condition(r#"kind == "sme" and months_active >= 24 and credit_grade in ["AAA","AA","A"]"#, &s)
        .expect("compiles");
    assert!(rule.matches(&row));
    assert!(compile_condition("sum_inflow_90d >= 500000.00 or aum >= 500000", &s).unwrap().matches(&row));
    assert!(!compile_condition("days_since_last_login > 90", &s).unwrap().matches(&row));
    assert!(compile_condition("not is_payroll", &s).unwrap().matches(&row));
    assert!(compile_condition("! is_payroll && aum > 0 || false", &s).unwrap().matches(&row));
}

#[test]
fn arithmetic_precedence_and_decimals() {
    let s = schema();
    let row = sme_row(&s);
    assert_eq!(eval("1 + 2 * 3", &row), Value::Number(d("7")));
    assert_eq!(eval("(1 + 2) * 3", &row), Value::Number(d("9")));
    assert_eq!(eval("10 - 4 - 3", &row), Value::Number(d("3")));
    assert_eq!(eval("-2 * -3", &row), Value::Number(d("6")));
    assert_eq!(eval("0.1 + 0.2", &row), Value::Number(d("0.3")));
    assert_eq!(eval("aum / 3", &row), Value::Number(d("40000")));
    assert_eq!(eval("sum_inflow_90d - aum", &row), Value::Number(d("492345.67")));
    assert_eq!(eval("500_000 == 500000.00", &row), Value::Bool(true));
    assert_eq!(eval("1 / 0", &row), Value::Null);
    assert_eq!(eval("1 / 0 > 1 or true", &row), Value::Bool(true));
}

#[test]
fn functions() {
    let s = schema();
    let row = sme_row(&s);
    assert_eq!(eval("min(aum, 5, 100)", &row), Value::Number(d("5")));
    assert_eq!(eval("max(aum, 5, 100)", &row), Value::Number(d("120000")));
    assert_eq!(eval("abs(-3.5)", &row), Value::Number(d("3.5")));
    assert_eq!(eval("coalesce(limit, aum)", &row), Value::Number(d("120000")));
    assert_eq!(eval("coalesce(limit, 0) == 0", &row), Value::Bool(true));
    assert_eq!(eval(r#"contains(channels, "branch")"#, &row), Value::Bool(true));
    assert_eq!(eval(r#"contains(channels, "web")"#, &row), Value::Bool(false));
    assert_eq!(eval(r#"contains(name, "Trad")"#, &row), Value::Bool(true));
    assert_eq!(eval("len(channels)", &row), Value::Number(d("2")));
    assert_eq!(eval("is_null(limit)", &row), Value::Bool(true));
    assert_eq!(eval("min(limit, 1)", &row), Value::Null);
    assert_eq!(eval(r#""web" in channels"#, &row), Value::Bool(false));
    assert_eq!(eval(r#""web" not in channels"#, &row), Value::Bool(true));
    assert_eq!(eval("months_active in [12, 30, -1]", &row), Value::Bool(true));
    assert_eq!(eval("months_active not in [12, 24]", &row), Value::Bool(true));
}

#[test]
fn three_valued_logic() {
    let s = schema();
    let empty = s.row();
    let c = |src: &str| compile_condition(src, &s).unwrap().eval_bool(&empty);
    assert_eq!(c("aum > 1"), None);
    assert_eq!(c("aum > 1 and false"), Some(false));
    assert_eq!(c("aum > 1 or true"), Some(true));
    assert_eq!(c("not (aum > 1)"), None);
    assert_eq!(c("is_null(aum)"), Some(true));
    assert!(!compile_condition("not (aum > 1)", &s).unwrap().matches(&empty));
}

#[test]
fn error_positions_and_messages() {
    let e = err("months_active >= foo");
    assert_eq!(e.kind, ErrorKind::UnknownField);
    assert_eq!((e.line, e.column, e.offset), (1, 18, 17));
    assert_eq!(e.to_string(), "unknown field `foo` at 1:18");

    let e = err(r#"aum + "x" > 1"#);
    assert_eq!(e.kind, ErrorKind::Type);
    assert_eq!(e.column, 7);
    assert!(e.message.contains("expected number"), "{}", e.message);
    assert!(e.message.contains("got string"), "{}", e.message);

    let e = err(r#"kind == 3"#);
    assert_eq!(e.kind, ErrorKind::Type);
    assert!(e.message.contains("cannot compare string with number"), "{}", e.message);
    assert_eq!(e.column, 9);

    let e = err("aum >= 1 and\n  kind = \"sme\"");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!((e.line, e.column), (2, 8));
    assert!(e.message.contains("use `==`"));

    let e = err("aum >");
    assert_eq!((e.kind, e.column), (ErrorKind::Syntax, 6));
    assert!(e.message.contains("end of input"));

    let e = err("(aum > 1");
    assert!(e.message.contains("expected `)`"), "{}", e.message);

    let e = err("aum > 1 kind");
    assert!(e.message.contains("unexpected identifier `kind`"), "{}", e.message);
    assert_eq!(e.column, 9);

    let e = err("1 < aum < 3");
    assert!(e.message.contains("cannot be chained"), "{}", e.message);

    let e = err("frobnicate(aum)");
    assert_eq!(e.kind, ErrorKind::UnknownFunction);
    assert_eq!((e.offset, e.end), (0, 10));

    let e = err("abs(aum, 1)");
    assert_eq!(e.kind, ErrorKind::Arity);

    let e = err(r#"credit_grade > "A""#);
    assert!(e.message.contains("not defined for string"));

    let e = err(r#"kind == "unterminated"#);
    assert!(e.message.contains("unterminated string"));
    assert_eq!(e.column, 9);

    let e = err("aum > 1e5");
    assert!(e.message.contains("followed directly by a letter"));

    let e = err("aum > 99999999999999999999999999999999");
    assert_eq!(e.kind, ErrorKind::Literal);

    let e = err("aum in channels");
    assert_eq!(e.kind, ErrorKind::Type);

    // Columns count characters, not bytes.
    let e = err(r#"name == "张三" and bogus"#);
    assert_eq!((e.column, e.offset), (18, 21));
    assert!(e.render(r#"name == "张三" and bogus"#).contains("^^^^^"));

    let e = compile_condition("aum + 1", &schema()).unwrap_err();
    assert!(e.message.contains("expected a condition (bool), got number"));

    assert_eq!(err("").message, "empty expression");
    assert_eq!(err("  é").column, 3);
}

#[test]
fn explain_reports_sub_conditions() {
    let s = schema();
    let row = sme_row(&s);
    let rule = compile_condition(r#"kind == "sme" and (months_active >= 36 or aum >= 100000) and not is_payroll"#, &s)
        .unwrap();
    let ex = rule.explain(&row);
    assert_eq!(ex.result, Some(true));
    assert_eq!(ex.children.len(), 3);
    assert_eq!(ex.children[0].condition, r#"kind == "sme""#);
    assert_eq!(ex.children[0].inputs, vec![Input { field: "kind".into(), value: Value::from("sme") }]);
    let or = &ex.children[1];
    assert_eq!(or.condition, "(months_active >= 36 or aum >= 100000)");
    assert_eq!(or.children.iter().map(|c| c.result).collect::<Vec<_>>(), vec![Some(false), Some(true)]);
    assert_eq!(ex.children[2].children[0].condition, "is_payroll");
    assert_eq!(ex.leaves().len(), 4);
    let text = ex.to_string();
    assert!(text.contains("[false] months_active >= 36  (months_active = 30)"), "{text}");
    let json = serde_json::to_string(&ex).unwrap();
    assert_eq!(serde_json::from_str::<Explanation>(&json).unwrap(), ex);
}

#[test]
fn schema_and_rows_are_checked() {
    let mut s = schema();
    assert_eq!(s.add("aum", Type::Number), Err(RulesError::DuplicateField("aum".into())));
    assert!(matches!(s.add("and", Type::Bool), Err(RulesError::InvalidFieldName(_))));
    assert!(matches!(s.add("9lives", Type::Bool), Err(RulesError::InvalidFieldName(_))));
    let mut row = s.row();
    assert!(matches!(row.set(&s, "aum", "lots"), Err(RulesError::FieldType { .. })));
    assert_eq!(row.set(&s, "nope", 1), Err(RulesError::UnknownField("nope".into())));
    let json = serde_json::to_string(&s).unwrap();
    let back: Schema = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert!(serde_json::from_str::<Schema>(r#"[{"name":"a","type":"number"},{"name":"a","type":"bool"}]"#).is_err());
}

#[test]
fn records_can_be_plain_value_slices() {
    let s = schema();
    let rule = compile_condition("aum >= 500000", &s).unwrap();
    let mut values = vec![Value::Null; s.len()];
    values[s.index_of("aum").unwrap()] = Value::from(600_000);
    assert!(rule.matches(&values));
    assert!(rule.matches(values.as_slice()));
    // A value of the wrong type reads as unknown rather than panicking.
    values[s.index_of("aum").unwrap()] = Value::from("oops");
    assert_eq!(rule.eval_bool(&values), None);
    assert_eq!(rule.fields(), &[(4, "aum".to_string())]);
}

#[test]
fn canonical_printing() {
    let s = schema();
    let e = compile("a_b".replace("a_b", r#"kind == "s\"q" and not (aum + 1 * 2 >= 3 or is_payroll)"#).as_str(), &s)
        .unwrap();
    assert_eq!(e.to_string(), r#"((kind == "s\"q") and (not (((aum + (1 * 2)) >= 3) or is_payroll)))"#);
    let again = compile(&e.to_string(), &s).unwrap();
    assert_eq!(again.to_string(), e.to_string());
}

// ---------------------------------------------------------------------------------------------
// Property tests: random well-typed expressions print and reparse to the same thing and evaluate
// identically; random input never makes the compiler or evaluator panic.

fn num_src() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0u32..1000, 0u32..3).prop_map(|(n, scale)| Decimal::new(i64::from(n), scale).to_string()),
        Just("aum".to_string()),
        Just("months_active".to_string()),
        Just("limit".to_string()),
        Just("len(channels)".to_string()),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop_oneof![Just("+"), Just("-"), Just("*"), Just("/")], inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("min({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("max({a}, {b})")),
            inner.clone().prop_map(|a| format!("abs({a})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
        ]
    })
}

fn str_src() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("kind".to_string()),
        Just("credit_grade".to_string()),
        "[a-zA-Z \"\\\\]{0,4}".prop_map(|s| format!("{s:?}")),
    ]
}

fn bool_src() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("is_payroll".to_string()),
        Just("true".to_string()),
        (num_src(), prop_oneof![Just("=="), Just("!="), Just("<"), Just("<="), Just(">"), Just(">=")], num_src())
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (str_src(), str_src()).prop_map(|(a, b)| format!("{a} != {b}")),
        str_src().prop_map(|a| format!("{a} in [\"AAA\", \"AA\"]")),
        str_src().prop_map(|a| format!("{a} not in channels")),
        num_src().prop_map(|a| format!("{a} in [1, 2.5, -3]")),
        str_src().prop_map(|a| format!("contains(channels, {a})")),
        num_src().prop_map(|a| format!("is_null({a})")),
    ];
    leaf.prop_recursive(4, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), prop_oneof![Just("and"), Just("or")], inner.clone())
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a}) == ({b})")),
        ]
    })
}

fn row_strategy() -> impl Strategy<Value = Row> {
    (
        proptest::option::of(any::<i64>()),
        proptest::option::of(0i64..100),
        proptest::option::of(any::<i64>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![Just("AAA"), Just("AA"), Just("B")]),
        proptest::collection::vec(prop_oneof![Just("web"), Just("AA"), Just("branch")], 0..3),
        any::<u32>(),
    )
        .prop_map(|(aum, months, limit, payroll, grade, channels, scale)| {
            let s = schema();
            let mut r = s.row();
            let dec = |v: i64| Decimal::new(v, scale % 29);
            r.set(&s, "aum", aum.map(dec)).unwrap();
            r.set(&s, "months_active", months).unwrap();
            r.set(&s, "limit", limit.map(dec)).unwrap();
            r.set(&s, "is_payroll", payroll).unwrap();
            r.set(&s, "credit_grade", grade).unwrap();
            r.set(&s, "kind", "sme").unwrap();
            r.set(&s, "channels", channels.into_iter().map(String::from).collect::<Vec<_>>()).unwrap();
            r
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn print_reparse_round_trip(src in bool_src(), row in row_strategy()) {
        let s = schema();
        let e = compile_condition(&src, &s).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
        let printed = e.to_string();
        let again = compile_condition(&printed, &s).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(again.to_string(), printed);
        prop_assert_eq!(e.eval_bool(&row), again.eval_bool(&row));
        let ex = e.explain(&row);
        prop_assert_eq!(ex.result, e.eval_bool(&row));
    }

    #[test]
    fn numeric_expressions_never_panic(src in num_src(), row in row_strategy()) {
        let e = compile(&src, &schema()).map_err(|e| TestCaseError::fail(format!("{src}: {e}")))?;
        let _ = e.eval(&row);
        let _ = e.eval_number(&row);
    }

    #[test]
    fn arbitrary_text_never_panics(src in "\\PC{0,40}") {
        if let Err(e) = compile(&src, &schema()) {
            prop_assert!(e.offset <= src.len() && e.end <= src.len() && e.offset <= e.end);
            let _ = e.render(&src);
        }
    }

    #[test]
    fn truncated_rules_give_positioned_errors(cut in 0usize..70) {
        let src = r#"kind == "sme" and months_active >= 24 and credit_grade in ["AAA","AA"]"#;
        let cut = cut.min(src.len());
        if let Err(e) = compile(&src[..cut], &schema()) {
            prop_assert!(e.offset <= cut);
            prop_assert!(e.line == 1 && e.column as usize <= cut + 1);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let src = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(err(&src).message.contains("nested too deeply"));
    let src = format!("{}true", "not ".repeat(10_000));
    assert!(err(&src).message.contains("nested too deeply"));
}
