pub(crate) mod obu;
pub(crate) mod util;
