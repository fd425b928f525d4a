//! AWS credentials the way the AWS tools find them: the environment first
//! (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, which
//! object_store reads itself), else the shared credentials file
//! (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) at profile AWS_PROFILE
//! or `default`. object_store has no profile-file support; this is the small
//! part of it an edit bay's setup needs. Nothing here is ever written down.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

/// Keys from the profile file, when the environment has none.
pub fn from_profile_file() -> Option<ProfileKeys> {
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        return None;
    }
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    parse(&std::fs::read_to_string(file).ok()?, &profile)
}

/// The keys of `profile` in an INI credentials file.
pub fn parse(text: &str, profile: &str) -> Option<ProfileKeys> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token, mut region) = (None, None, None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            in_profile = name == profile || name.strip_prefix("profile ").map(str::trim) == Some(profile);
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                "region" => region = Some(v),
                _ => {}
            }
        }
    }
    Some(ProfileKeys { access_key_id: id?, secret_access_key: secret?, session_token: token, region })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_is_read_from_the_credentials_file() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[edit]\n# bay 3\naws_access_key_id=C\naws_secret_access_key=D\nregion = eu-west-1\n";
        assert_eq!(parse(text, "default").unwrap().access_key_id, "A");
        let e = parse(text, "edit").unwrap();
        assert_eq!((e.access_key_id.as_str(), e.secret_access_key.as_str(), e.region.as_deref()), ("C", "D", Some("eu-west-1")));
        assert!(parse(text, "nope").is_none());
        assert!(parse("[x]\naws_access_key_id=1\n", "x").is_none());
    }
}
