//! The architectures a manifest may name and the OCI platform each one builds for.
//!
//! This is the one place keg knows them (bashbrew's `architecture/oci-platform.go` is the
//! reference); manifest validation, `--arch`, plan nodes, cache keys and `--platform` all read
//! this table. Invariant: the table is sorted by name.

/// An OCI platform: `os/architecture[/variant]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub architecture: &'static str,
    pub variant: Option<&'static str>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

const fn linux(architecture: &'static str, variant: Option<&'static str>) -> Platform {
    Platform {
        os: "linux",
        architecture,
        variant,
    }
}

/// Every known architecture with its platform, sorted by name.
pub const ARCHITECTURES: &[(&str, Platform)] = &[
    ("amd64", linux("amd64", None)),
    ("arm32v5", linux("arm", Some("v5"))),
    ("arm32v6", linux("arm", Some("v6"))),
    ("arm32v7", linux("arm", Some("v7"))),
    ("arm64v8", linux("arm64", Some("v8"))),
    ("i386", linux("386", None)),
    ("mips64le", linux("mips64le", None)),
    ("ppc64le", linux("ppc64le", None)),
    ("riscv64", linux("riscv64", None)),
    ("s390x", linux("s390x", None)),
    (
        "windows-amd64",
        Platform {
            os: "windows",
            architecture: "amd64",
            variant: None,
        },
    ),
];

/// The architecture keg uses when none is given.
pub const DEFAULT: &str = "amd64";

/// The platform of a known architecture.
pub fn platform(arch: &str) -> Option<Platform> {
    ARCHITECTURES
        .binary_search_by(|(name, _)| name.cmp(&arch))
        .ok()
        .map(|i| ARCHITECTURES[i].1)
}

pub fn is_known(arch: &str) -> bool {
    platform(arch).is_some()
}

/// The known architecture names, for messages.
pub fn names() -> impl Iterator<Item = &'static str> {
    ARCHITECTURES.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_platforms_render() {
        assert!(ARCHITECTURES.windows(2).all(|w| w[0].0 < w[1].0));
        let cases = [
            ("amd64", "linux/amd64"),
            ("arm64v8", "linux/arm64/v8"),
            ("arm32v7", "linux/arm/v7"),
            ("i386", "linux/386"),
            ("windows-amd64", "windows/amd64"),
        ];
        for (arch, want) in cases {
            assert_eq!(platform(arch).unwrap().to_string(), want, "{arch}");
        }
        assert_eq!(platform("arm64"), None);
    }
}
