//! Registry queries (placeholder: asks `docker buildx imagetools inspect --raw`).

use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
#[error("{reference}: {message}")]
pub struct RegistryError {
    pub reference: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct RemoteManifest {
    pub digest: String,
    pub media_type: String,
    pub config_digest: Option<String>,
    pub manifests: Vec<String>,
}

#[derive(Default)]
pub struct Registry;

impl Registry {
    pub fn new() -> Registry {
        Registry
    }

    pub fn manifest(&self, reference: &str) -> Result<Option<RemoteManifest>, RegistryError> {
        let err = |message: String| RegistryError {
            reference: reference.to_string(),
            message,
        };
        let out = Command::new("docker")
            .args(["buildx", "imagetools", "inspect", "--raw", reference])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| err(e.to_string()))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            if text.contains("not found") {
                return Ok(None);
            }
            return Err(err(text.trim().to_string()));
        }
        let body = out.stdout;
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| err(e.to_string()))?;
        let digest = format!("sha256:{}", crate::plan::key::sha256_hex(&body));
        Ok(Some(RemoteManifest {
            digest,
            media_type: json["mediaType"].as_str().unwrap_or_default().to_string(),
            config_digest: json["config"]["digest"].as_str().map(str::to_string),
            manifests: json["manifests"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|d| d["digest"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        }))
    }

    pub fn image_ids(&self, reference: &str) -> Result<Vec<String>, RegistryError> {
        let Some(m) = self.manifest(reference)? else {
            return Ok(Vec::new());
        };
        if let Some(config) = m.config_digest {
            return Ok(vec![config]);
        }
        let repo = reference.rsplit_once(':').map_or(reference, |(r, _)| r);
        let mut out = Vec::new();
        for d in &m.manifests {
            if let Some(c) = self
                .manifest(&format!("{repo}@{d}"))?
                .and_then(|m| m.config_digest)
            {
                out.push(c);
            }
        }
        Ok(out)
    }

    pub fn manifest_digests(&self, reference: &str) -> Result<Vec<String>, RegistryError> {
        Ok(match self.manifest(reference)? {
            None => Vec::new(),
            Some(m) if m.manifests.is_empty() => vec![m.digest],
            Some(m) => m.manifests,
        })
    }
}
