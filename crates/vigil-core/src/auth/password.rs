//! Password policy and hashing (argon2id, PHC strings).

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use rand::Rng;
use thiserror::Error;

/// Shortest accepted password, in characters (Unicode scalar values).
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest accepted password, in characters (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_LEN: usize = 128;
/// User names shorter than this are only refused as the whole password, not as a part of it.
pub const MIN_NAME_LEN_FOR_CONTAINMENT: usize = 3;

static COMMON_LIST: &str = include_str!("common-passwords.txt");

/// Why a password is refused. The messages are meant for the person choosing the password.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("password refused: it must be at least {min} characters long (it has {len})")]
    TooShort { min: usize, len: usize },
    #[error("password refused: it must be at most {max} characters long (it has {len})")]
    TooLong { max: usize, len: usize },
    #[error("password refused: it must not contain control characters (tab, newline, ...)")]
    ControlCharacter,
    #[error("password refused: it must not be or contain the user name")]
    ContainsUserName,
    #[error("password refused: it is, or is built on, a commonly used password")]
    Common,
    #[error("password refused: it is a repeated or sequential pattern")]
    Pattern,
    #[error("password refused: the new password must differ from the current one")]
    SameAsCurrent,
}

fn common() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_LIST
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_lowercase)
            .collect()
    })
}

/// Number of entries in the compiled-in list of common passwords.
pub fn common_password_count() -> usize {
    common().len()
}

/// Check a password against the policy (docs/security.md):
/// 12 to 128 characters, no control characters, not equal to the user name and (for names of 3
/// or more characters) not containing it, case-insensitively; not a common password or built on
/// one (after removing leading and trailing digits and symbols and undoing common letter
/// substitutions); not a single repeated unit ("abcabcabcabc") or a straight run ("abcdefghijkl").
pub fn check_password(user_name: &str, password: &str) -> Result<(), PolicyError> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(PolicyError::TooShort {
            min: MIN_PASSWORD_LEN,
            len,
        });
    }
    if len > MAX_PASSWORD_LEN {
        return Err(PolicyError::TooLong {
            max: MAX_PASSWORD_LEN,
            len,
        });
    }
    if password.chars().any(char::is_control) {
        return Err(PolicyError::ControlCharacter);
    }
    let lower = password.to_lowercase();
    let name = user_name.trim().to_lowercase();
    if !name.is_empty()
        && (lower == name
            || (name.chars().count() >= MIN_NAME_LEN_FOR_CONTAINMENT && lower.contains(&name)))
    {
        return Err(PolicyError::ContainsUserName);
    }
    let list = common();
    let core = lower.trim_matches(|c: char| !c.is_alphabetic());
    let plain = unsubstitute(core);
    let plain_core = plain.trim_matches(|c: char| !c.is_alphabetic());
    if list.contains(&lower)
        || list.contains(core)
        || list.contains(plain.as_str())
        || list.contains(plain_core)
        || list.contains(&lower.replace(' ', ""))
    {
        return Err(PolicyError::Common);
    }
    let chars: Vec<char> = lower.chars().collect();
    if is_repetition(&chars) || is_run(&chars) {
        return Err(PolicyError::Pattern);
    }
    Ok(())
}

/// Undo the usual letter substitutions ("p@ssw0rd" -> "password").
fn unsubstitute(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '8' => 'b',
            '3' => 'e',
            '1' | '!' | '|' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            '7' | '+' => 't',
            '9' => 'g',
            other => other,
        })
        .collect()
}

/// The whole password is one unit repeated ("aaaa", "abcabc", "passwordpassword").
fn is_repetition(c: &[char]) -> bool {
    let n = c.len();
    (1..=n / 2).any(|u| n % u == 0 && c.chunks(u).all(|ch| ch == &c[..u]))
}

/// Every character is the previous one plus (or minus) one ("abcdefghijkl", "987654321098").
/// Digits wrap around (…8, 9, 0, 1…).
fn is_run(c: &[char]) -> bool {
    let step = |a: char, b: char| -> Option<i32> {
        if a.is_ascii_digit() && b.is_ascii_digit() {
            let d = (b as i32 - a as i32).rem_euclid(10);
            match d {
                1 => Some(1),
                9 => Some(-1),
                _ => None,
            }
        } else {
            match b as i32 - a as i32 {
                1 => Some(1),
                -1 => Some(-1),
                _ => None,
            }
        }
    };
    let Some(first) = c.get(..2).and_then(|p| step(p[0], p[1])) else {
        return false;
    };
    c.windows(2).all(|w| step(w[0], w[1]) == Some(first))
}

/// Hash a password with argon2id (the crate's default parameters, a fresh random salt) into a
/// PHC string. The policy is not checked here; see [`check_password`].
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Whether `password` matches the PHC string `phc` (argon2 parameters are read from the string).
/// A malformed or unsupported hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match Argon2::default().verify_password(password.as_bytes(), phc) {
        Ok(()) => true,
        Err(argon2::password_hash::Error::PasswordInvalid) => false,
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash cannot be checked");
            false
        }
    }
}

/// A hash of a random password, compared against when the user name is unknown so that a log-in
/// takes as long whether or not the user exists.
pub(crate) fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        let mut pw = [0u8; 16];
        rand::rng().fill(&mut pw);
        hash_password(&format!("{pw:?}")).unwrap_or_default()
    })
}

/// Characters of generated passwords: no look-alikes (0/O, 1/l/I).
const TEMP_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A random temporary password that passes the policy for `user_name`: four groups of four
/// characters, e.g. `k7Qm-x3Rt-9ZpH-aw4E` (about 93 bits).
pub fn generate_temporary_password(user_name: &str) -> String {
    let mut rng = rand::rng();
    loop {
        let groups: Vec<String> = (0..4)
            .map(|_| {
                (0..4)
                    .map(|_| char::from(TEMP_ALPHABET[rng.random_range(0..TEMP_ALPHABET.len())]))
                    .collect()
            })
            .collect();
        let pw = groups.join("-");
        if check_password(user_name, &pw).is_ok() {
            return pw;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords the policy takes: (user name, password).
    #[rustfmt::skip]
    const TAKEN: &[(&str, &str)] = &[
        ("alice", "ward4-kettle-moon"),
        ("alice", "Tr0ub4dor&3xyz"),
        ("alice", "correct horse battery"), // a passphrase with spaces
        ("al", "pal-grey-ocean-7"), // a two-letter name is only refused as the whole password
        ("alice", "ééééééééééé-x"), // non-ASCII counts characters, not bytes
    ];

    /// Passwords the policy refuses: (user name, password, why).
    #[rustfmt::skip]
    const REFUSED: &[(&str, &str, PolicyError)] = &[
        ("alice", "short-pw-11", PolicyError::TooShort { min: 12, len: 11 }),
        ("alice", "", PolicyError::TooShort { min: 12, len: 0 }),
        ("alice", "éééééééééé", PolicyError::TooShort { min: 12, len: 10 }),
        ("alice", "line\nbreak-in-it", PolicyError::ControlCharacter),
        ("rosalind", "Rosalind2024!", PolicyError::ContainsUserName),
        ("rosalind", "my-ROSALIND-pw", PolicyError::ContainsUserName),
        ("nurse.jones", "NURSE.JONES", PolicyError::TooShort { min: 12, len: 11 }),
        ("nurse.jones1", "NURSE.JONES1", PolicyError::ContainsUserName),
        ("al", "al", PolicyError::TooShort { min: 12, len: 2 }),
        ("alice", "password1234", PolicyError::Common),
        ("alice", "Password2024!", PolicyError::Common),
        ("alice", "P@ssw0rd!!2024", PolicyError::Common),
        ("alice", "!!Welcome123456", PolicyError::Common),
        ("alice", "QWERTYUIOP123", PolicyError::Common),
        ("alice", "Hospital#2025", PolicyError::Common),
        ("alice", "Correct Horse Battery Staple", PolicyError::Common),
        ("alice", "aaaaaaaaaaaa", PolicyError::Pattern),
        ("alice", "abcabcabcabc", PolicyError::Pattern),
        ("alice", "xy12xy12xy12", PolicyError::Pattern),
        ("alice", "ghijklmnopqr", PolicyError::Pattern),
        ("alice", "345678901234", PolicyError::Pattern),
        ("alice", "zyxwvutsrqpo", PolicyError::Pattern),
    ];

    #[test]
    fn policy_cases() {
        for (name, pw) in TAKEN {
            assert_eq!(check_password(name, pw), Ok(()), "{name}: {pw:?}");
        }
        for (name, pw, e) in REFUSED {
            assert_eq!(check_password(name, pw), Err(e.clone()), "{name}: {pw:?}");
        }
        let long = "x1-".repeat(43); // 129 characters
        assert_eq!(
            check_password("alice", &long),
            Err(PolicyError::TooLong { max: 128, len: 129 }),
            "{long:?}"
        );
        assert_eq!(
            check_password("alice", &long[..128]),
            Ok(()),
            "128 characters"
        );
        assert!(
            common_password_count() >= 300,
            "{}",
            common_password_count()
        );
    }

    #[test]
    fn argon2id_hash_verifies() {
        let h = hash_password("ward4-kettle-moon").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify_password("ward4-kettle-moon", &h));
        assert!(!verify_password("ward4-kettle-mooN", &h));
        assert!(!verify_password("", &h));
        // Same password, fresh salt: a different PHC string, both verify.
        let h2 = hash_password("ward4-kettle-moon").expect("hash");
        assert_ne!(h, h2);
        assert!(verify_password("ward4-kettle-moon", &h2));
        assert!(!verify_password("ward4-kettle-moon", "not a phc string"));
        assert!(!verify_password("x", dummy_hash()));
    }

    #[test]
    fn temporary_passwords_pass_the_policy() {
        for _ in 0..20 {
            let pw = generate_temporary_password("alice");
            assert_eq!(pw.chars().count(), 19);
            assert_eq!(check_password("alice", &pw), Ok(()));
        }
        assert_ne!(
            generate_temporary_password("a"),
            generate_temporary_password("a")
        );
    }
}
