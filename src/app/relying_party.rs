//! countersign as a WebAuthn relying party: its id is `PUBLIC_URL`'s host, and its pages live
//! under that origin.

use webauthn_rs::prelude::{Url, Webauthn, WebauthnBuilder};

use crate::ledger::LinkPurpose;

/// The relying party: countersign as approvers' browsers reach it (`PUBLIC_URL`).
pub struct Passkeys {
    webauthn: Webauthn,
    public_url: Url,
}

impl Passkeys {
    pub fn new(public_url: &Url) -> Result<Self, String> {
        let rp_id = public_url
            .host_str()
            .ok_or_else(|| "PUBLIC_URL names no host".to_owned())?;
        let webauthn = WebauthnBuilder::new(rp_id, public_url)
            .and_then(|builder| builder.rp_name("countersign").build())
            .map_err(|e| format!("PUBLIC_URL cannot be a passkey relying party: {e}"))?;
        Ok(Self {
            webauthn,
            public_url: public_url.clone(),
        })
    }

    pub fn webauthn(&self) -> &Webauthn {
        &self.webauthn
    }

    /// The page of a one-time link.
    pub fn link(&self, purpose: LinkPurpose, token: &str) -> String {
        let page = match purpose {
            LinkPurpose::Enroll => "enroll",
            LinkPurpose::Add => "add",
            LinkPurpose::Vote => "vote",
        };
        let origin = self.public_url.as_str().trim_end_matches('/');
        format!("{origin}/passkey/{page}/{token}")
    }
}
