//! Formats by file name and media type, and numbers YAML cannot hold as
//! integers.

use buttress_policy::{Format, PolicyDocument};

#[test]
fn a_file_name_names_its_format() {
    for (name, format) in [
        ("policy.toml", Some(Format::Toml)),
        ("/etc/app/policy.TOML", Some(Format::Toml)),
        ("policy.yaml", Some(Format::Yaml)),
        ("policy.yml", Some(Format::Yaml)),
        ("policy.json", Some(Format::Json)),
        ("policy.ini", None),
        ("policy", None),
    ] {
        assert_eq!(Format::from_path(name), format, "{name}");
    }
}

#[test]
fn a_media_type_names_its_format_and_back() {
    for (media, format) in [
        ("application/toml", Some(Format::Toml)),
        ("text/toml; charset=utf-8", Some(Format::Toml)),
        ("application/yaml", Some(Format::Yaml)),
        ("application/x-yaml", Some(Format::Yaml)),
        ("text/yaml", Some(Format::Yaml)),
        ("text/x-yaml", Some(Format::Yaml)),
        ("Application/JSON; charset=utf-8", Some(Format::Json)),
        ("text/plain", None),
        ("", None),
    ] {
        assert_eq!(Format::from_media_type(media), format, "{media}");
    }
    for format in [Format::Toml, Format::Yaml, Format::Json] {
        assert_eq!(Format::from_media_type(format.media_type()), Some(format));
    }
    assert_eq!(
        [Format::Toml, Format::Yaml, Format::Json].map(|f| f.to_string()),
        ["TOML", "YAML", "JSON"]
    );
}

#[test]
fn a_number_above_i64_keeps_its_digits_in_yaml() {
    let doc = PolicyDocument::parse(
        r#"{ "dependencies": { "llm": { "cache": { "max_entries": 18446744073709551615 } } } }"#,
        Format::Json,
    )
    .expect("valid");
    let yaml = doc.to_text(Format::Yaml);
    assert!(yaml.contains("18446744073709551615"), "{yaml}");
}
