//! # customer
//!
//! Pure domain logic for the customer data platform (no storage, no HTTP):
//!
//! * [`activity`]: folds raw money movements into the windowed behaviour facts.
//! * [`identity`]: [`CustomerId`], kinds, KYC status, channel identities, merging duplicate
//!   records of one person ([`merge`], [`Directory`]): one person, one customer ID.
//! * [`validate`]: PRC resident ID (GB 11643-1999, MOD 11-2), Unified Social Credit Code
//!   (GB 32100-2015), `+86` mobile numbers, and masking (`110***********1234`).
//! * [`profile`]: the 360° [`Profile`] computed deterministically from [`CustomerFacts`] in five
//!   dimensions (basic, assets & liabilities, transactions, risk preference, lifecycle), plus
//!   [`ChurnFeatures`] for a model trained elsewhere.
//! * [`tags`]: versioned tag rules written in the `rules` language over the profile; more than
//!   200 built-in tags ([`builtin_tags`]); evaluation with explanations.
//! * [`segments`]: tiers (mass / wealth / SME), RFM quintiles and named segments, and segments
//!   defined as boolean rules over tags.
//! * [`recommend`]: next-best products from item-based collaborative filtering and association
//!   rules with a suitability filter, and a leave-one-out precision/recall evaluation.
//! * [`synthetic`]: a seeded synthetic population for tests and demos.
//!
//! Money is CNY in `i64` minor units throughout; similarity scores and statistics are `f64`.

// Amounts in minor units are written `<yuan>_<fen>` (e.g. `500_000_00` = 500,000.00 CNY) on
// purpose, so the last group is the fen.
#![allow(clippy::inconsistent_digit_grouping)]

pub mod activity;
pub mod identity;
pub mod profile;
pub mod recommend;
pub mod segments;
pub mod synthetic;
pub mod tags;
pub mod validate;

pub use identity::{
    merge, Channel, ChannelIdentity, Customer, CustomerId, CustomerKind, CustomerStatus, Directory, IdDocument,
    KycStatus, UnknownStatus,
};
pub use profile::{ChurnFeatures, CreditGrade, CustomerFacts, LifecycleStage, Profile, RiskLevel, TxWindow};
pub use recommend::{Catalog, Recommender, RecommenderConfig};
pub use segments::{rfm_scores, tier, RfmCuts, RfmInput, RfmScore, RfmSegment, SegmentDefinition, SegmentEngine, Tier};
pub use tags::{builtin_tags, profile_schema, AssignedTag, Dimension, TagDefinition, TagRegistry};
pub use validate::{mask_id_number, mask_name, mask_phone, MobilePhone, ResidentId, Uscc};

/// Errors of the customer domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    #[error("invalid resident ID number: {0}")]
    InvalidResidentId(String),
    #[error("invalid unified social credit code: {0}")]
    InvalidUscc(String),
    #[error("invalid mobile phone number: {0}")]
    InvalidPhone(String),
    #[error("invalid customer id {0:?}: expected C-<uuid>")]
    InvalidCustomerId(String),
    #[error("cannot merge {a} and {b}: {reason}")]
    MergeConflict { a: CustomerId, b: CustomerId, reason: String },
    #[error("{channel:?} identity {external_id:?} already belongs to {owner}")]
    IdentityTaken { channel: Channel, external_id: String, owner: CustomerId },
    #[error("invalid tag id {0:?}: use lower-case letters, digits and `_`, starting with a letter")]
    InvalidTagId(String),
    #[error("tag `{0}` already exists; use update to change it")]
    DuplicateTag(String),
    #[error("unknown tag `{0}`")]
    UnknownTag(String),
    #[error("rule of `{id}` is invalid: {source}")]
    InvalidRule {
        id: String,
        #[source]
        source: rules::CompileError,
    },
    #[error("unknown product `{0}`")]
    UnknownProduct(String),
}
