//! The three generation agents. The set is closed: the flow, the store and the API all
//! enumerate exactly these.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Agent {
    Copy,
    Social,
    Visual,
}

impl Agent {
    /// In the order the sequential path runs them.
    pub const ALL: [Agent; 3] = [Agent::Copy, Agent::Social, Agent::Visual];

    pub fn as_str(self) -> &'static str {
        match self {
            Agent::Copy => "copy",
            Agent::Social => "social",
            Agent::Visual => "visual",
        }
    }
}

impl std::fmt::Display for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Agent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "copy" => Ok(Agent::Copy),
            "social" => Ok(Agent::Social),
            "visual" => Ok(Agent::Visual),
            other => Err(format!(
                "unknown agent `{other}`; allowed: copy, social, visual"
            )),
        }
    }
}
