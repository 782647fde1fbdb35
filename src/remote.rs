//! `remote arches [--json] IMAGE...`: the bashbrew architectures an image in a registry
//! offers, with their manifest digests (bashbrew's `cmd-remote-arches.go` and
//! `registry.ResolvedObject.Architectures`).
//!
//! Invariants: output is bashbrew's: text `REF -> DIGEST` then `  ARCH -> DIGEST` per member
//! (architectures sorted, members in index order), or one JSON object per image with the
//! OCI descriptors (`ref`, `desc`, `arches`); a member matches an architecture when its
//! normalized platform (containerd's normalization, plus bashbrew's `arm64` -> `arm64/v8`)
//! equals that architecture's OS, architecture and variant; a member without a platform (a
//! single image) takes it from its image config. A registry that cannot be reached, or an
//! image that is not there, is an error with exit code 1.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Deserialize;

use crate::error::Error;
use crate::registry::{
    MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, Reference,
    Registry, RegistryError,
};
use crate::template::funcs::json_string;

/// An OCI content descriptor, with the fields bashbrew prints (in `ocispec.Descriptor`'s
/// order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub urls: Vec<String>,
    pub annotations: BTreeMap<String, String>,
    pub platform: Option<Platform>,
}

/// An OCI platform (`ocispec.Platform`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, rename = "os.version")]
    pub os_version: String,
    #[serde(default, rename = "os.features")]
    pub os_features: Vec<String>,
    #[serde(default)]
    pub variant: String,
    #[serde(default)]
    pub features: Vec<String>,
}

impl Platform {
    /// containerd's `platforms.Normalize`, then bashbrew's `arm64` -> `arm64/v8`.
    pub fn normalize(&self) -> Platform {
        let mut p = self.clone();
        p.os = p.os.to_lowercase();
        let (arch, variant) = (p.architecture.to_lowercase(), p.variant.to_lowercase());
        let (arch, variant) = match arch.as_str() {
            "i386" => ("386".to_string(), String::new()),
            "x86_64" | "x86-64" | "amd64" => (
                "amd64".to_string(),
                if variant == "v1" {
                    String::new()
                } else {
                    variant
                },
            ),
            "aarch64" | "arm64" => (
                "arm64".to_string(),
                match variant.as_str() {
                    "8" | "v8" | "v8.0" => String::new(),
                    "9" | "9.0" | "v9.0" => "v9".to_string(),
                    _ => variant,
                },
            ),
            "armhf" => ("arm".to_string(), "v7".to_string()),
            "armel" => ("arm".to_string(), "v6".to_string()),
            "arm" => (
                "arm".to_string(),
                match variant.as_str() {
                    "" | "7" => "v7".to_string(),
                    "5" | "6" | "8" => format!("v{variant}"),
                    _ => variant,
                },
            ),
            _ => (arch, variant),
        };
        p.architecture = arch;
        p.variant = variant;
        if p.architecture == "arm64" && p.variant.is_empty() {
            p.variant = "v8".to_string();
        }
        p
    }

    /// The bashbrew architectures this (normalized) platform is.
    pub fn arches(&self) -> Vec<&'static str> {
        crate::arch::ARCHITECTURES
            .iter()
            .filter(|(_, known)| {
                known.os == self.os
                    && known.architecture == self.architecture
                    && known.variant.unwrap_or("") == self.variant
            })
            .map(|(name, _)| *name)
            .collect()
    }
}

/// One image's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arches {
    /// The reference, normalized (`docker.io/library/busybox:latest`).
    pub reference: String,
    pub desc: Descriptor,
    /// Architecture -> matching members, in index order.
    pub arches: BTreeMap<String, Vec<Descriptor>>,
}

/// Resolves every image and prints what bashbrew's `remote arches` prints.
pub fn arches(
    registry: &Registry,
    images: &[String],
    json: bool,
    out: &mut impl Write,
) -> Result<(), Error> {
    for image in images {
        let found = resolve(registry, image)?;
        let text = if json {
            format!("{}\n", to_json(&found))
        } else {
            to_text(&found)
        };
        out.write_all(text.as_bytes()).map_err(Error::Output)?;
        out.flush().map_err(Error::Output)?;
    }
    Ok(())
}

fn failed(context: String) -> impl Fn(RegistryError) -> Error {
    move |e| Error::Remote {
        context: context.clone(),
        message: e.to_string(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    platform: Option<Platform>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireManifest {
    media_type: Option<String>,
    config: Option<WireDescriptor>,
    manifests: Option<Vec<WireDescriptor>>,
}

/// One image's architectures.
pub fn resolve(registry: &Registry, image: &str) -> Result<Arches, Error> {
    let reference = Reference::parse(image).map_err(|e| Error::Usage {
        option: "IMAGE",
        value: image.to_string(),
        expected: e.to_string(),
    })?;
    let resolve_failed = failed(format!("failed to resolve {image}"));
    let raw = registry
        .raw_manifest(&reference)
        .map_err(&resolve_failed)?
        .ok_or_else(|| Error::Remote {
            context: format!("failed to resolve {image}"),
            message: format!("{reference}: not found"),
        })?;
    let query_failed = failed(format!("failed to query arches of {image}"));
    let wire: WireManifest = serde_json::from_slice(&raw.bytes).map_err(|e| Error::Remote {
        context: format!("failed to query arches of {image}"),
        message: format!("{reference}: invalid manifest: {e}"),
    })?;
    let media_type = wire
        .media_type
        .clone()
        .filter(|t| !t.is_empty())
        .or_else(|| {
            raw.media_type
                .clone()
                .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            if wire.manifests.is_some() {
                MEDIA_OCI_INDEX.to_string()
            } else {
                MEDIA_OCI_MANIFEST.to_string()
            }
        });
    let desc = Descriptor {
        media_type: media_type.clone(),
        digest: raw.digest.clone(),
        size: raw.bytes.len() as u64,
        ..Descriptor::default()
    };
    let members: Vec<Descriptor> =
        if media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST {
            wire.manifests
                .unwrap_or_default()
                .into_iter()
                .map(|d| Descriptor {
                    media_type: d.media_type,
                    digest: d.digest,
                    size: d.size,
                    urls: d.urls,
                    annotations: d.annotations,
                    platform: d.platform,
                })
                .collect()
        } else if media_type == MEDIA_OCI_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST {
            vec![desc.clone()]
        } else {
            return Err(Error::Remote {
                context: format!("failed to query arches of {image}"),
                message: format!("unknown media type: {media_type:?}"),
            });
        };
    let mut arches: BTreeMap<String, Vec<Descriptor>> = BTreeMap::new();
    for mut member in members {
        let known = member
            .platform
            .as_ref()
            .is_some_and(|p| !p.os.is_empty() && !p.architecture.is_empty());
        if !known {
            member.platform =
                Some(config_platform(registry, &reference, &member).map_err(&query_failed)?);
        }
        let platform = member
            .platform
            .as_ref()
            .map(Platform::normalize)
            .unwrap_or_default();
        member.platform = Some(platform.clone());
        for arch in platform.arches() {
            arches
                .entry(arch.to_string())
                .or_default()
                .push(member.clone());
        }
    }
    Ok(Arches {
        reference: reference.to_string(),
        desc,
        arches,
    })
}

/// The platform an image manifest's config blob names.
fn config_platform(
    registry: &Registry,
    reference: &Reference,
    member: &Descriptor,
) -> Result<Platform, RegistryError> {
    let pinned = reference.with_digest(&member.digest);
    let bad = |reason: String| RegistryError::BadManifest {
        reference: pinned.to_string(),
        reason,
    };
    let raw = registry
        .raw_manifest(&pinned)?
        .ok_or_else(|| bad("not found".to_string()))?;
    let manifest: WireManifest =
        serde_json::from_slice(&raw.bytes).map_err(|e| bad(e.to_string()))?;
    let config = manifest
        .config
        .ok_or_else(|| bad(format!("unknown media type: {:?}", member.media_type)))?;
    let blob = registry.blob(&pinned, &config.digest)?;
    serde_json::from_slice::<Platform>(&blob).map_err(|e| bad(format!("image config: {e}")))
}

/// bashbrew's text: `REF -> DIGEST`, then `  ARCH -> DIGEST` for each member.
pub fn to_text(found: &Arches) -> String {
    let mut out = format!("{} -> {}\n", found.reference, found.desc.digest);
    for (arch, members) in &found.arches {
        for member in members {
            out.push_str(&format!("  {arch} -> {}\n", member.digest));
        }
    }
    out
}

/// bashbrew's JSON: `{"ref":...,"desc":{...},"arches":{"amd64":[{...}]}}` (Go's encoding).
pub fn to_json(found: &Arches) -> String {
    let mut out = String::from("{\"ref\":");
    json_string(&mut out, &found.reference);
    out.push_str(",\"desc\":");
    descriptor_json(&mut out, &found.desc);
    out.push_str(",\"arches\":{");
    for (i, (arch, members)) in found.arches.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, arch);
        out.push_str(":[");
        for (j, member) in members.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            descriptor_json(&mut out, member);
        }
        out.push(']');
    }
    out.push_str("}}");
    out
}

fn descriptor_json(out: &mut String, d: &Descriptor) {
    out.push_str("{\"mediaType\":");
    json_string(out, &d.media_type);
    out.push_str(",\"digest\":");
    json_string(out, &d.digest);
    out.push_str(&format!(",\"size\":{}", d.size));
    if !d.urls.is_empty() {
        out.push_str(",\"urls\":");
        string_list(out, &d.urls);
    }
    if !d.annotations.is_empty() {
        out.push_str(",\"annotations\":{");
        for (i, (k, v)) in d.annotations.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(out, k);
            out.push(':');
            json_string(out, v);
        }
        out.push('}');
    }
    if let Some(p) = &d.platform {
        out.push_str(",\"platform\":{\"architecture\":");
        json_string(out, &p.architecture);
        out.push_str(",\"os\":");
        json_string(out, &p.os);
        if !p.os_version.is_empty() {
            out.push_str(",\"os.version\":");
            json_string(out, &p.os_version);
        }
        if !p.os_features.is_empty() {
            out.push_str(",\"os.features\":");
            string_list(out, &p.os_features);
        }
        if !p.variant.is_empty() {
            out.push_str(",\"variant\":");
            json_string(out, &p.variant);
        }
        if !p.features.is_empty() {
            out.push_str(",\"features\":");
            string_list(out, &p.features);
        }
        out.push('}');
    }
    out.push('}');
}

fn string_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, item);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform(os: &str, arch: &str, variant: &str) -> Platform {
        Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
            ..Platform::default()
        }
    }

    #[test]
    fn platforms_normalize_and_match_like_bashbrew() {
        let cases = [
            (platform("linux", "amd64", ""), vec!["amd64"]),
            (platform("linux", "x86_64", "v1"), vec!["amd64"]),
            (platform("linux", "arm64", ""), vec!["arm64v8"]),
            (platform("linux", "aarch64", "v8"), vec!["arm64v8"]),
            (platform("linux", "arm", ""), vec!["arm32v7"]),
            (platform("linux", "arm", "6"), vec!["arm32v6"]),
            (platform("linux", "armel", ""), vec!["arm32v6"]),
            (platform("linux", "i386", ""), vec!["i386"]),
            (platform("windows", "amd64", ""), vec!["windows-amd64"]),
            (platform("linux", "arm64", "v9"), vec![]),
            (platform("unknown", "unknown", ""), vec![]),
        ];
        for (p, want) in cases {
            assert_eq!(p.normalize().arches(), want, "{p:?}");
        }
    }

    #[test]
    fn text_and_json_are_bashbrews() {
        let member = |digest: &str, arch: &str, variant: &str| Descriptor {
            media_type: MEDIA_OCI_MANIFEST.into(),
            digest: digest.into(),
            size: 10,
            platform: Some(platform("linux", arch, variant)),
            ..Descriptor::default()
        };
        let mut arches = BTreeMap::new();
        arches.insert(
            "arm64v8".to_string(),
            vec![member("sha256:b", "arm64", "v8")],
        );
        arches.insert("amd64".to_string(), vec![member("sha256:a", "amd64", "")]);
        let found = Arches {
            reference: "127.0.0.1:5000/x:1".into(),
            desc: Descriptor {
                media_type: MEDIA_OCI_INDEX.into(),
                digest: "sha256:i".into(),
                size: 99,
                ..Descriptor::default()
            },
            arches,
        };
        assert_eq!(
            to_text(&found),
            "127.0.0.1:5000/x:1 -> sha256:i\n  amd64 -> sha256:a\n  arm64v8 -> sha256:b\n"
        );
        assert_eq!(
            to_json(&found),
            "{\"ref\":\"127.0.0.1:5000/x:1\",\"desc\":{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"sha256:i\",\"size\":99},\"arches\":{\"amd64\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:a\",\"size\":10,\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}],\"arm64v8\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:b\",\"size\":10,\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}}"
        );
    }
}
