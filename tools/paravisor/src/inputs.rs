//! What `build`, `manifest` and `verify` (for its rebuild) read besides the
//! description and the kernel: where program images are found and the regions'
//! initial contents. One set of options, so the three find and read the same
//! files the same way.

use std::path::PathBuf;

use crate::failure::Failure;
use crate::region_data::{self, RegionData};

#[derive(Clone, Debug, Default, clap::Args)]
pub struct Inputs {
    /// Also look for program images here (after the system.xml directory); repeatable.
    #[arg(long = "search-path", value_name = "DIR")]
    pub search_path: Vec<PathBuf>,
    #[command(flatten)]
    pub region_data: region_data::Args,
}

impl Inputs {
    /// The regions' initial contents for `system` (see [`region_data::load`]).
    pub fn region_data(&self, system: &sdf::System) -> Result<Vec<RegionData>, Failure> {
        region_data::load(system, &self.region_data, &self.search_path)
    }
}
