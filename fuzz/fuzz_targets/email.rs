//! Email validation: never a panic; whatever it accepts has one '@' part with a dotted
//! domain and no whitespace.
#![no_main]

use ecomind_admin::accounts::check_email;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if check_email(s).is_ok() {
        assert!(
            s.contains('@') && !s.chars().any(char::is_whitespace),
            "{s:?}"
        );
        let domain = s.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        assert!(domain.contains('.'), "{s:?}");
    }
});
