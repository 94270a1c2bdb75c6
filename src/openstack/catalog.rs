//! The service catalog of a Keystone token: which URL serves a service
//! type, for an interface and a region, as keystoneauth picks it.
//!
//! This module owns catalog lookup and the Barbican URL rule (the
//! catalog's key-manager URL is unversioned; clients append `/v1`). It must
//! not do IO.

use std::fmt;

use serde::Deserialize;

/// Which of a service's endpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Interface {
    /// For users (the default, as in openstackclient).
    #[default]
    Public,
    /// For services inside the cloud.
    Internal,
    /// For administrators.
    Admin,
}

impl Interface {
    /// Parses `public`, `internal`, `admin`, also keystoneauth's older
    /// `publicURL`, `internalURL`, `adminURL`.
    pub fn parse(text: &str) -> Option<Interface> {
        let lower = text.trim().to_ascii_lowercase();
        match lower.strip_suffix("url").unwrap_or(&lower) {
            "public" => Some(Interface::Public),
            "internal" => Some(Interface::Internal),
            "admin" => Some(Interface::Admin),
            _ => None,
        }
    }

    /// The catalog's word for it.
    pub fn name(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A token's service catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Catalog {
    services: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Service {
    #[serde(rename = "type")]
    service_type: String,
    #[serde(default)]
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Endpoint {
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    url: String,
}

/// No endpoint fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The catalog has no service of that type.
    #[error(
        "the token's catalog has no {service_type} service{}; {hint}",
        if .available.is_empty() { " (the catalog is empty: is the token scoped to a project?)".to_owned() } else { format!(" (it has: {})", .available.join(", ")) },
    )]
    NoService {
        /// The type asked for.
        service_type: String,
        /// The types the catalog has.
        available: Vec<String>,
        /// What to do.
        hint: &'static str,
    },
    /// The service has no endpoint for the interface and region.
    #[error(
        "the token's catalog has no {interface} {service_type} endpoint{} (it has: {}); set OS_INTERFACE / OS_REGION_NAME to one of those",
        .region.as_ref().map(|r| format!(" in region {r:?}")).unwrap_or_default(),
        .available.join(", ")
    )]
    NoEndpoint {
        /// The type asked for.
        service_type: String,
        /// The interface asked for.
        interface: Interface,
        /// The region asked for.
        region: Option<String>,
        /// `interface@region` of the endpoints it has.
        available: Vec<String>,
    },
}

impl Catalog {
    /// Parses Keystone's `token.catalog` array.
    ///
    /// Fails when the JSON is not a catalog.
    pub fn from_json(value: serde_json::Value) -> Result<Catalog, serde_json::Error> {
        serde_json::from_value(value)
    }

    /// Whether the catalog lists no service (unscoped tokens).
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The URL of the first `service_type` endpoint with `interface` in
    /// `region` (any region when `None`), as keystoneauth chooses.
    ///
    /// Fails naming what the catalog has instead.
    pub fn endpoint(
        &self,
        service_type: &str,
        interface: Interface,
        region: Option<&str>,
    ) -> Result<&str, CatalogError> {
        let services: Vec<&Service> = self
            .services
            .iter()
            .filter(|service| service.service_type == service_type)
            .collect();
        if services.is_empty() {
            return Err(CatalogError::NoService {
                service_type: service_type.to_owned(),
                available: self
                    .services
                    .iter()
                    .map(|service| service.service_type.clone())
                    .collect(),
                hint: "ask the cloud's operator, or set the endpoint explicitly",
            });
        }
        let endpoints = || services.iter().flat_map(|service| service.endpoints.iter());
        let in_region = |endpoint: &Endpoint| match region {
            None => true,
            Some(wanted) => {
                endpoint.region_id.as_deref() == Some(wanted)
                    || endpoint.region.as_deref() == Some(wanted)
            }
        };
        endpoints()
            .find(|endpoint| {
                Interface::parse(&endpoint.interface) == Some(interface) && in_region(endpoint)
            })
            .map(|endpoint| endpoint.url.as_str())
            .ok_or_else(|| CatalogError::NoEndpoint {
                service_type: service_type.to_owned(),
                interface,
                region: region.map(str::to_owned),
                available: endpoints()
                    .map(|endpoint| {
                        let region = endpoint
                            .region_id
                            .as_deref()
                            .or(endpoint.region.as_deref())
                            .unwrap_or("-");
                        format!("{}@{region}", endpoint.interface)
                    })
                    .collect(),
            })
    }
}

/// Barbican's API root from its catalog URL: the catalog lists it
/// unversioned (`http://kms:9311`), and castellan/barbicanclient append
/// `/v1`; a URL that already ends in `/v1` is kept.
pub fn barbican_v1(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with("/v1") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::from_json(serde_json::json!([
            {"type": "identity", "name": "keystone", "id": "1", "endpoints": [
                {"id": "a", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "http://k/v3"}]},
            {"type": "key-manager", "name": "barbican", "id": "2", "endpoints": [
                {"id": "b", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "http://kms-public:9311"},
                {"id": "c", "interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": "http://kms-internal:9311/"},
                {"id": "d", "interface": "public", "region_id": "RegionTwo", "url": "http://kms-two:9311/v1"}]}
        ]))
        .unwrap()
    }

    #[test]
    fn picks_by_type_interface_and_region() {
        let catalog = catalog();
        assert_eq!(
            catalog
                .endpoint("key-manager", Interface::Public, None)
                .unwrap(),
            "http://kms-public:9311"
        );
        assert_eq!(
            catalog
                .endpoint("key-manager", Interface::Internal, Some("RegionOne"))
                .unwrap(),
            "http://kms-internal:9311/"
        );
        assert_eq!(
            catalog
                .endpoint("key-manager", Interface::Public, Some("RegionTwo"))
                .unwrap(),
            "http://kms-two:9311/v1"
        );
        let err = catalog
            .endpoint("key-manager", Interface::Admin, None)
            .unwrap_err();
        assert!(err.to_string().contains("public@RegionOne"), "{err}");
        let err = catalog
            .endpoint("image", Interface::Public, None)
            .unwrap_err();
        assert!(err.to_string().contains("identity, key-manager"), "{err}");
        let err = Catalog::default()
            .endpoint("key-manager", Interface::Public, None)
            .unwrap_err();
        assert!(err.to_string().contains("scoped"), "{err}");
    }

    #[test]
    fn barbican_gets_v1_once() {
        assert_eq!(barbican_v1("http://kms:9311"), "http://kms:9311/v1");
        assert_eq!(barbican_v1("http://kms:9311/"), "http://kms:9311/v1");
        assert_eq!(
            barbican_v1("http://kms/key-manager/v1/"),
            "http://kms/key-manager/v1"
        );
        assert_eq!(Interface::parse("internalURL"), Some(Interface::Internal));
        assert_eq!(Interface::parse("private"), None);
    }
}
