//! One argument of a host fault (`fault_table`): the names an experiment may give it (the seed
//! library's, ours, older aliases), the keys a `parameter_map` stage may override it with, the
//! SSM document parameter it becomes, its default, and how its value is translated for the
//! document (`Convert`: the library's values, such as `BOTH` or a rate in kbit, written the way
//! our documents take them; or checked and not sent, such as a port filter of `0`).

/// An experiment value (as text) → the document parameter's value, `None` when nothing is sent;
/// `Err` says what is wrong (the caller names the argument).
pub type Convert = fn(&str) -> Result<Option<String>, String>;

/// One argument of a fault.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// Our name: `<func>_<suffix>` in the experiment for a ladder fault, `<suffix>` otherwise.
    pub suffix: &'static str,
    /// The seed library's full name, when it differs from ours; the name docs and plans use.
    pub library: Option<&'static str>,
    /// Further full names accepted for it (older names, the library's earlier signature).
    pub aliases: &'static [&'static str],
    /// Further keys a `parameter_map` stage may use for it (the seed's document parameters).
    pub keys: &'static [&'static str],
    /// The document parameter it becomes; empty: checked, never sent.
    pub parameter: &'static str,
    /// Used when the experiment does not give it; `None` means the experiment must.
    pub default: Option<&'static str>,
    pub value: Convert,
}

pub const fn arg(suffix: &'static str, parameter: &'static str, default: &'static str) -> Arg {
    Arg {
        suffix,
        library: None,
        aliases: &[],
        keys: &[],
        parameter,
        default: Some(default),
        value: same,
    }
}

pub const fn required(suffix: &'static str, parameter: &'static str) -> Arg {
    Arg {
        default: None,
        ..arg(suffix, parameter, "")
    }
}

impl Arg {
    /// The seed library's name for it.
    pub const fn library(mut self, name: &'static str) -> Arg {
        self.library = Some(name);
        self
    }
    pub const fn aliases(mut self, names: &'static [&'static str]) -> Arg {
        self.aliases = names;
        self
    }
    pub const fn keys(mut self, keys: &'static [&'static str]) -> Arg {
        self.keys = keys;
        self
    }
    pub const fn value(mut self, convert: Convert) -> Arg {
        self.value = convert;
        self
    }
    /// Sent as given.
    pub fn sent(&self) -> bool {
        !self.parameter.is_empty()
    }
}

/// The value as it is.
pub fn same(v: &str) -> Result<Option<String>, String> {
    Ok(Some(v.to_string()))
}

/// `BOTH`, `Egress`...: our documents take lower case.
pub fn lower(v: &str) -> Result<Option<String>, String> {
    Ok(Some(v.trim().to_ascii_lowercase()))
}

/// The library's rate is a number of kbit/s (its document writes `<rate>kbit`); a rate with a
/// unit (`1mbit`) is ours and passes as it is.
pub fn kbit(v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(Some(format!("{v}kbit")))
    } else {
        Ok(Some(v.to_string()))
    }
}

/// The library's `port_type`: which port of its filter (`sport`/`dport`); with the filter on
/// every port (`0`) it changes nothing.
pub fn port_type(v: &str) -> Result<Option<String>, String> {
    match v.trim() {
        "sport" | "dport" => Ok(None),
        other => Err(format!("is {other:?}: expected sport or dport")),
    }
}

/// The library's `port_number`: `0` (every port) is what our network documents do; a filter
/// on one port is not offered natively, and refused rather than widened to every port.
pub fn every_port(v: &str) -> Result<Option<String>, String> {
    match v.trim() {
        "" | "0" => Ok(None),
        other => Err(format!(
            "is {other:?}: only 0 (every port) is supported natively; this fault acts on all the \
             interface's traffic"
        )),
    }
}

/// A port filter our document takes (`PacketLoss`): `0` (every packet) is its default and not
/// sent; 1-65535 is sent.
pub fn port_filter(v: &str) -> Result<Option<String>, String> {
    match v.trim().parse::<u16>() {
        Ok(0) => Ok(None),
        Ok(n) => Ok(Some(n.to_string())),
        Err(_) => Err(format!(
            "is {v:?}: expected a port, 0-65535 (0: every port)"
        )),
    }
}

/// Which port a filter our document takes matches: `sport` or `dport`, sent.
pub fn port_side(v: &str) -> Result<Option<String>, String> {
    port_type(v).map(|_| Some(v.trim().to_string()))
}

/// The library's `source_ports` of the port blackhole: not offered natively.
pub fn no_source_ports(v: &str) -> Result<Option<String>, String> {
    match v.trim() {
        "" => Ok(None),
        other => Err(format!(
            "is {other:?}: blackholing by source port is not supported natively; give the port \
             as destination_ports (with direction ingress for a local port)"
        )),
    }
}

/// One port (the library takes a multiport list; our document one port per fault).
pub fn one_port(v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if v.contains([',', ' ', ':']) {
        return Err(format!(
            "is {v:?}: one port per fault natively (run one action per port)"
        ));
    }
    Ok(Some(v.to_string()))
}

/// One address (the seed's document takes a list; ours one address or CIDR per fault).
pub fn one_address(v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if v.contains([',', ' ']) {
        return Err(format!(
            "is {v:?}: one address or CIDR per fault natively (run one action per address)"
        ));
    }
    Ok(Some(v.to_string()))
}

/// `tcp`, `udp`, or both (`tcp udp`, the library's default; `udp tcp`, `tcp,udp`).
pub fn protocols(v: &str) -> Result<Option<String>, String> {
    let mut names: Vec<String> = v
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    names.sort();
    names.dedup();
    match names.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["tcp"] => Ok(Some("tcp".into())),
        ["udp"] => Ok(Some("udp".into())),
        ["tcp", "udp"] => Ok(Some("tcp udp".into())),
        _ => Err(format!("is {v:?}: expected tcp, udp or \"tcp udp\"")),
    }
}

/// The library's `port_protocol` of the address blackhole: checked; our document drops every
/// packet to or from the address, whatever its protocol.
pub fn any_protocol(v: &str) -> Result<Option<String>, String> {
    protocols(v).map(|_| None)
}

/// A whole number, checked and not sent (the seed's `root_vol_exhaustion` sizes).
pub fn whole(v: &str) -> Result<Option<String>, String> {
    match v.trim().parse::<u64>() {
        Ok(_) => Ok(None),
        Err(_) => Err(format!("is {v:?}: expected a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_s_values_become_our_documents_values() {
        assert_eq!(lower("BOTH").unwrap().as_deref(), Some("both"));
        assert_eq!(kbit("100").unwrap().as_deref(), Some("100kbit"));
        assert_eq!(kbit("1mbit").unwrap().as_deref(), Some("1mbit"));
        assert_eq!(protocols("udp tcp").unwrap().as_deref(), Some("tcp udp"));
        assert_eq!(protocols("TCP").unwrap().as_deref(), Some("tcp"));
        assert!(protocols("icmp").unwrap_err().contains("expected tcp, udp"));
        assert_eq!(every_port("0").unwrap(), None);
        assert!(
            every_port("443")
                .unwrap_err()
                .contains("only 0 (every port)")
        );
        assert!(port_type("src").is_err());
        assert_eq!(port_type("dport").unwrap(), None);
        assert!(
            one_port("80,443")
                .unwrap_err()
                .contains("one port per fault")
        );
        assert!(no_source_ports("22").is_err());
        assert_eq!(any_protocol("tcp udp").unwrap(), None);
        assert!(whole("4GB").is_err());
        assert_eq!(port_filter("0").unwrap(), None);
        assert_eq!(port_filter("443").unwrap().as_deref(), Some("443"));
        assert!(port_filter("70000").is_err());
        assert_eq!(port_side("dport").unwrap().as_deref(), Some("dport"));
    }
}
