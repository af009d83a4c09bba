//! OpenAPI schemas for the domain's parsed string types: each is a string on the wire, with
//! the constraints its `parse` enforces written down for integrators.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

pub(super) fn string(
    description: &str,
    format: Option<SchemaFormat>,
    lengths: Option<(usize, usize)>,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .format(format)
        .min_length(lengths.map(|(min, _)| min))
        .max_length(lengths.map(|(_, max)| max))
        .into()
}

pub(super) fn custom(format: &str) -> Option<SchemaFormat> {
    Some(SchemaFormat::Custom(format.to_owned()))
}

pub(super) fn uuid() -> Option<SchemaFormat> {
    Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))
}

/// Implements `ToSchema` for a string newtype.
macro_rules! string_schema {
    ($type:ty, $description:expr, $format:expr, $lengths:expr) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
                super::schema::string($description, $format, $lengths)
            }
        }
        impl utoipa::ToSchema for $type {}
    };
}
pub(super) use string_schema;
