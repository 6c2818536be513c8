//! Placeholder until this family's codecs land: it owns no type yet.

use crate::ggml::codec::Codec;
use crate::ggml::types::GgmlType;

pub(crate) fn codec(_ty: GgmlType) -> Option<Codec> {
    None
}
