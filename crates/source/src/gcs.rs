//! Google Cloud Storage: where `gs://` requests go and with which credentials.
//!
//! - **Endpoint**: `FLOE_GCS_ENDPOINT`, else `STORAGE_EMULATOR_HOST` (the variable
//!   Google's own client libraries read, so a shell set up for an emulator such as
//!   fake-gcs-server works unchanged), else storage.googleapis.com. A bare
//!   `host:port` means `http://host:port`, as it does for Google's libraries.
//! - **Credentials**: `FLOE_GCS_CREDENTIALS` = `anonymous` (public buckets, the
//!   default), `application-default` (`GOOGLE_APPLICATION_CREDENTIALS`, else the
//!   file `gcloud auth application-default login` writes, else the metadata server
//!   of a GCE/GKE/Cloud Run host), or the path of a key file (a service account key
//!   or an authorized-user file). When none is set but `GOOGLE_APPLICATION_CREDENTIALS`
//!   is, that file is used.
//!
//! The same settings reach the store's virtual chunk container for `gs://`
//! (`floe-store`), so icechunk reads chunks from where the headers came from.

use std::path::PathBuf;

use object_store::gcp::GoogleCloudStorageBuilder;

/// How `gs://` requests are authorized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GcsAuth {
    /// No credentials: public buckets (ISMIP6's `gs://ismip6`).
    #[default]
    Anonymous,
    /// Google's application default credentials chain.
    ApplicationDefault,
    /// A key file: a service account key or an authorized-user file.
    KeyFile(PathBuf),
}

impl std::str::FromStr for GcsAuth {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "" => Err("empty: use anonymous, application-default or a key file's path".into()),
            "anonymous" => Ok(GcsAuth::Anonymous),
            "application-default" | "adc" => Ok(GcsAuth::ApplicationDefault),
            path => Ok(GcsAuth::KeyFile(PathBuf::from(path))),
        }
    }
}

impl std::fmt::Display for GcsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GcsAuth::Anonymous => write!(f, "anonymous"),
            GcsAuth::ApplicationDefault => write!(f, "application-default"),
            GcsAuth::KeyFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Where `gs://` requests go and how they are authorized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcsSettings {
    /// The JSON/XML API base URL (`http://127.0.0.1:4443` for an emulator);
    /// `None`: storage.googleapis.com.
    pub endpoint: Option<String>,
    /// Credentials.
    pub auth: GcsAuth,
}

/// `host:port` → `http://host:port`; a URL is kept, without a trailing `/`.
pub fn endpoint_url(raw: &str) -> String {
    let raw = raw.trim().trim_end_matches('/');
    if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    }
}

impl GcsSettings {
    /// From the environment (see the module's documentation).
    pub fn from_env() -> Self {
        // Empty variables count as unset (`STORAGE_EMULATOR_HOST=` in a shell).
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = var("FLOE_GCS_ENDPOINT")
            .or_else(|| var("STORAGE_EMULATOR_HOST"))
            .map(|e| endpoint_url(&e));
        let auth = match var("FLOE_GCS_CREDENTIALS") {
            // Never fails: only an empty text does not parse, and that is unset.
            Some(text) => text.parse().unwrap_or_default(),
            None => match var("GOOGLE_APPLICATION_CREDENTIALS") {
                Some(path) => GcsAuth::KeyFile(PathBuf::from(path)),
                None => GcsAuth::Anonymous,
            },
        };
        GcsSettings { endpoint, auth }
    }

    /// These settings with the explicit ones (a config file, flags) put over them.
    pub fn overridden(
        mut self,
        endpoint: Option<&str>,
        credentials: Option<&str>,
    ) -> Result<Self, String> {
        if let Some(e) = endpoint.filter(|e| !e.trim().is_empty()) {
            self.endpoint = Some(endpoint_url(e));
        }
        if let Some(c) = credentials {
            self.auth = c
                .parse()
                .map_err(|e| format!("gcs_credentials = {c:?}: {e}"))?;
        }
        Ok(self)
    }

    /// An object_store builder for `bucket` with these settings.
    pub fn builder(&self, bucket: &str) -> GoogleCloudStorageBuilder {
        let builder = match &self.auth {
            GcsAuth::Anonymous => GoogleCloudStorageBuilder::new().with_skip_signature(true),
            GcsAuth::ApplicationDefault => GoogleCloudStorageBuilder::from_env(),
            GcsAuth::KeyFile(path) => GoogleCloudStorageBuilder::new()
                .with_application_credentials(path.display().to_string()),
        };
        let builder = builder.with_bucket_name(bucket);
        match &self.endpoint {
            Some(endpoint) => builder.with_base_url(endpoint).with_client_options(
                object_store::ClientOptions::new().with_allow_http(endpoint.starts_with("http://")),
            ),
            None => builder,
        }
    }

    /// The options of an icechunk GCS container (object_store's config keys): the
    /// endpoint, when there is one.
    pub fn container_options(&self) -> std::collections::HashMap<String, String> {
        let mut options = std::collections::HashMap::new();
        if let Some(endpoint) = &self.endpoint {
            options.insert("base_url".to_string(), endpoint.clone());
            if endpoint.starts_with("http://") {
                options.insert("allow_http".to_string(), "true".to_string());
            }
        }
        options
    }

    /// Where requests go, for messages.
    pub fn describe_endpoint(&self) -> &str {
        self.endpoint
            .as_deref()
            .unwrap_or("https://storage.googleapis.com")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_host_forms() {
        assert_eq!(endpoint_url("127.0.0.1:4443"), "http://127.0.0.1:4443");
        assert_eq!(endpoint_url("https://gcs.example/"), "https://gcs.example");
    }

    #[test]
    fn credentials_forms() {
        assert_eq!("anonymous".parse(), Ok(GcsAuth::Anonymous));
        assert_eq!(
            "application-default".parse(),
            Ok(GcsAuth::ApplicationDefault)
        );
        assert_eq!(
            "/keys/sa.json".parse(),
            Ok(GcsAuth::KeyFile(PathBuf::from("/keys/sa.json")))
        );
        assert!("".parse::<GcsAuth>().is_err());
    }

    #[test]
    fn explicit_settings_win() {
        let s = GcsSettings::default()
            .overridden(Some("localhost:9000"), Some("adc"))
            .expect("valid");
        assert_eq!(s.endpoint.as_deref(), Some("http://localhost:9000"));
        assert_eq!(s.auth, GcsAuth::ApplicationDefault);
        let options = s.container_options();
        assert_eq!(options["base_url"], "http://localhost:9000");
        assert_eq!(options["allow_http"], "true");
        assert!(GcsSettings::default().container_options().is_empty());
    }
}
