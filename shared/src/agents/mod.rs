//! Generation agents and the compliance audit.
