//! Features documents (`resource_model::FeaturesFile`, YAML and JSON), `flipt.yaml`
//! (`RepositoryConfig`) and commit-message templates on arbitrary bytes: nothing panics, hangs
//! or allocates without bound, and a file that parses can be edited, written and read back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use resource_model::{FeaturesFile, Flag, RepositoryConfig, Template, TemplateValue};

fuzz_target!(|data: &[u8]| {
    for path in ["ns/features.yaml", "ns/features.json"] {
        if let Ok(mut file) = FeaturesFile::parse(path, data) {
            file.put_flag(Flag::new("fuzz-added", "Added"));
            let written = file.to_bytes();
            let again = FeaturesFile::parse(path, &written)
                .unwrap_or_else(|p| panic!("what was written does not parse again: {p}"));
            assert!(again.flag("fuzz-added").is_some());
        }
    }
    let _ = RepositoryConfig::parse("flipt.yaml", data);
    if let Ok(text) = std::str::from_utf8(data)
        && text.len() < 512
    {
        let _ = Template::parse(text).map(|t| t.render(&TemplateValue::Nil));
    }
});
