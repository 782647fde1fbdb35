//! BuildKit builders: what `docker buildx inspect` says of each builder of a pool, and how
//! keg reaches it.
//!
//! Invariants: a builder's platforms are in buildx's order, the first being its native one
//! (every platform with the same OS and architecture counts as native: `linux/amd64/v2`
//! too); a builder of the `docker` driver is an engine (it runs classic builds, keeps
//! images) and is reached as a docker context (`docker --context NAME`), since buildx
//! refuses `--builder` for another context's docker driver; any other driver is reached
//! with `docker buildx build --builder NAME` and has no engine of its own.

/// One builder of the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    pub name: String,
    pub driver: String,
    /// The first node's endpoint (a docker context for the docker driver).
    pub endpoint: String,
    /// Every platform it builds, native first.
    pub platforms: Vec<String>,
}

impl Builder {
    /// `docker buildx inspect NAME`, parsed.
    pub fn inspect(name: &str) -> Result<Builder, String> {
        let inspect = crate::docker::DockerCommand::docker(&["buildx", "inspect", name]);
        let output = crate::process::output(
            &inspect,
            &crate::interrupt::INTERRUPTED,
            Some(crate::process::QUERY_LIMIT),
        )
        .map_err(|e| format!("docker buildx inspect {name}: {e}"))?;
        if output.code != 0 {
            return Err(format!(
                "docker buildx inspect {name}: {}",
                output
                    .stderr
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("failed")
            ));
        }
        parse_inspect(name, &output.stdout)
    }

    /// Whether it runs on an engine: classic builds, local images (`docker` driver).
    pub fn is_engine(&self) -> bool {
        self.driver == "docker"
    }

    /// The docker context to reach its engine with, for the docker driver.
    pub fn context(&self) -> Option<&str> {
        self.is_engine().then_some(self.endpoint.as_str())
    }

    /// `docker [--context C]`: the start of every command run on this builder.
    pub fn docker(&self) -> Vec<String> {
        match self.context() {
            Some(context) => vec!["docker".into(), "--context".into(), context.into()],
            None => vec!["docker".into()],
        }
    }

    /// `--builder NAME` for `buildx build`, unless the builder is a context's docker driver.
    pub fn builder_flag(&self) -> Vec<String> {
        if self.is_engine() {
            Vec::new()
        } else {
            vec!["--builder".into(), self.name.clone()]
        }
    }

    /// Whether it builds `platform` (`os/arch[/variant]`) at all.
    pub fn supports(&self, platform: &str) -> bool {
        self.platforms
            .iter()
            .any(|p| crate::docker::platform_matches(p, platform))
    }

    /// Whether it builds `platform` natively (its first platform's OS and architecture).
    pub fn is_native(&self, platform: &str) -> bool {
        let Some(native) = self.platforms.first() else {
            return false;
        };
        let os_arch = |p: &str| p.split('/').take(2).collect::<Vec<_>>().join("/");
        os_arch(native) == os_arch(platform)
    }
}

/// Parses `docker buildx inspect`'s text: `Driver:`, the first node's `Endpoint:` and
/// `Platforms:` (emulated platforms may carry a `*`).
pub fn parse_inspect(name: &str, text: &str) -> Result<Builder, String> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    let driver =
        field("Driver:").ok_or_else(|| format!("builder {name}: no Driver in buildx inspect"))?;
    let endpoint = field("Endpoint:").unwrap_or_else(|| name.to_string());
    let platforms: Vec<String> = field("Platforms:")
        .unwrap_or_default()
        .split(',')
        .map(|p| p.trim().trim_end_matches('*').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if platforms.is_empty() {
        return Err(format!(
            "builder {name} reports no platforms (is it running? `docker buildx inspect --bootstrap {name}`)"
        ));
    }
    Ok(Builder {
        name: name.to_string(),
        driver,
        endpoint,
        platforms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCKER: &str = "Name:          keg-node-2
Driver:        docker
Last Activity: 2026-12-01 14:15:14 +0000 UTC

Nodes:
Name:             keg-node-2
Endpoint:         keg-node-2
Status:           running
BuildKit version: v0.0.0+unknown
Platforms:        linux/amd64, linux/amd64/v2, linux/amd64/v3, linux/arm64
Labels:
 org.mobyproject.buildkit.worker.executor:             containerd
";

    const REMOTE: &str = "Name:   fleet
Driver: remote

Nodes:
Name:      fleet0
Endpoint:  tcp://10.0.0.5:1234
Status:    running
Platforms: linux/arm64*, linux/amd64
";

    #[test]
    fn docker_driver_builders_are_engines_reached_by_context() {
        let b = parse_inspect("keg-node-2", DOCKER).unwrap();
        assert_eq!(b.driver, "docker");
        assert!(b.is_engine());
        assert_eq!(b.docker(), ["docker", "--context", "keg-node-2"]);
        assert!(b.builder_flag().is_empty());
        assert!(b.is_native("linux/amd64") && b.is_native("linux/amd64/v3"));
        assert!(!b.is_native("linux/arm64/v8") && b.supports("linux/arm64/v8"));
        assert!(!b.supports("linux/s390x"));
    }

    #[test]
    fn other_drivers_are_reached_with_builder() {
        let b = parse_inspect("fleet", REMOTE).unwrap();
        assert!(!b.is_engine());
        assert_eq!(b.endpoint, "tcp://10.0.0.5:1234");
        assert_eq!(b.docker(), ["docker"]);
        assert_eq!(b.builder_flag(), ["--builder", "fleet"]);
        assert_eq!(b.platforms, ["linux/arm64", "linux/amd64"]);
        assert!(b.is_native("linux/arm64/v8"));
        assert!(!b.is_native("linux/amd64"));
    }

    #[test]
    fn a_builder_without_platforms_is_an_error() {
        let err = parse_inspect("x", "Name: x\nDriver: remote\n").unwrap_err();
        assert!(err.contains("reports no platforms"), "{err}");
        assert!(parse_inspect("x", "nothing").is_err());
    }
}
