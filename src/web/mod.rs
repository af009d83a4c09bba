//! Pages for people's browsers, served by countersign itself: the passkey enrollment and vote
//! pages and the one script they run (no third-party script, font or CDN; a strict
//! Content-Security-Policy). They call the application services as the API and Slack do.

pub mod pages;
pub mod passkeys;
