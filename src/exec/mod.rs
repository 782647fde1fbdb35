//! Build execution: a generic ready queue ([`queue`]) and the Docker engine ([`docker`]).

pub mod docker;
pub mod queue;
