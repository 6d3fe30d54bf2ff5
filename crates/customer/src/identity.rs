//! Unified customer identity: one person (or business), one [`CustomerId`], many channel
//! identities; duplicate records with the same ID number are merged keeping history.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::validate::{MobilePhone, ResidentId, Uscc};
use crate::CustomerError;

/// A customer's identifier: a UUID v7 (time-sortable), printed as `C-<uuid>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomerId(Uuid);

impl CustomerId {
    /// A fresh time-ordered identifier.
    pub fn new() -> Self {
        CustomerId(Uuid::now_v7())
    }

    /// A deterministic identifier (tests, synthetic data).
    pub fn from_u128(v: u128) -> Self {
        CustomerId(Uuid::from_u128(v))
    }

    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for CustomerId {
    fn default() -> Self {
        CustomerId::new()
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C-{}", self.0)
    }
}

impl fmt::Debug for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "C-{}", self.0)
    }
}

impl FromStr for CustomerId {
    type Err = CustomerError;
    /// Accepts `C-<uuid>` or a bare UUID.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = s.strip_prefix("C-").unwrap_or(s);
        Uuid::parse_str(raw).map(CustomerId).map_err(|_| CustomerError::InvalidCustomerId(s.to_string()))
    }
}

impl TryFrom<String> for CustomerId {
    type Error = CustomerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<CustomerId> for String {
    fn from(id: CustomerId) -> String {
        id.to_string()
    }
}

/// What kind of party the customer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerKind {
    Individual,
    SoleProprietor,
    Sme,
    CoreEnterprise,
}

impl CustomerKind {
    pub const ALL: [CustomerKind; 4] =
        [CustomerKind::Individual, CustomerKind::SoleProprietor, CustomerKind::Sme, CustomerKind::CoreEnterprise];

    /// The snake_case name used in rules (`kind == "sme"`).
    pub fn as_str(self) -> &'static str {
        match self {
            CustomerKind::Individual => "individual",
            CustomerKind::SoleProprietor => "sole_proprietor",
            CustomerKind::Sme => "sme",
            CustomerKind::CoreEnterprise => "core_enterprise",
        }
    }

    /// Sole proprietors, SMEs and core enterprises.
    pub fn is_business(self) -> bool {
        self != CustomerKind::Individual
    }
}

/// Where a customer master record is in its life: `active`, `closed` (no longer a customer;
/// kept with its history) or `merged` (a duplicate record folded into another one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    Active,
    Closed,
    Merged,
}

impl CustomerStatus {
    pub const ALL: [CustomerStatus; 3] = [CustomerStatus::Active, CustomerStatus::Closed, CustomerStatus::Merged];

    pub fn as_str(self) -> &'static str {
        match self {
            CustomerStatus::Active => "active",
            CustomerStatus::Closed => "closed",
            CustomerStatus::Merged => "merged",
        }
    }

    pub fn parse(s: &str) -> Option<CustomerStatus> {
        CustomerStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for CustomerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status text that names no status (a corrupt row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for CustomerStatus {
    type Error = UnknownStatus;
    fn try_from(s: String) -> Result<Self, UnknownStatus> {
        CustomerStatus::parse(&s).ok_or(UnknownStatus(s))
    }
}

impl TryFrom<String> for KycStatus {
    type Error = UnknownStatus;
    fn try_from(s: String) -> Result<Self, UnknownStatus> {
        KycStatus::parse(&s).ok_or(UnknownStatus(s))
    }
}

/// Know-your-customer status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KycStatus {
    NotStarted,
    Pending,
    Verified,
    Rejected,
    /// Was verified, documents expired; must be refreshed.
    Expired,
}

impl KycStatus {
    pub const ALL: [KycStatus; 5] =
        [KycStatus::NotStarted, KycStatus::Pending, KycStatus::Verified, KycStatus::Rejected, KycStatus::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            KycStatus::NotStarted => "not_started",
            KycStatus::Pending => "pending",
            KycStatus::Verified => "verified",
            KycStatus::Rejected => "rejected",
            KycStatus::Expired => "expired",
        }
    }

    /// Parses the snake_case name (`not_started`, `pending`, `verified`, `rejected`, `expired`).
    pub fn parse(s: &str) -> Option<KycStatus> {
        KycStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a KYC review may move a customer from `self` to `to`. Changing to the same
    /// status is not a transition (callers treat it as a no-op).
    ///
    /// * nothing goes back to `not_started` (a started review has a history);
    /// * `pending` ends in `verified` or `rejected`; it cannot expire before it was verified;
    /// * `rejected` needs a new submission (`pending`) before it can become `verified`;
    /// * only a `verified` status can become `expired`;
    /// * `verified` and `expired` may be re-reviewed (`pending`) or revoked (`rejected`), and
    ///   `expired` may be refreshed straight to `verified` (documents renewed at a branch);
    /// * `not_started` may go to `pending`, or straight to `verified` / `rejected` when the
    ///   check happened in person.
    pub fn can_change_to(self, to: KycStatus) -> bool {
        use KycStatus::*;
        match (self, to) {
            (_, NotStarted) => false,
            (NotStarted, Pending | Verified | Rejected) => true,
            (Pending, Verified | Rejected) => true,
            (Verified, Pending | Rejected | Expired) => true,
            (Rejected, Pending) => true,
            (Expired, Pending | Verified | Rejected) => true,
            _ => false,
        }
    }

    /// Preference when two records of one person disagree: a verified status wins, then
    /// expired (was verified once), pending, rejected, not started.
    pub fn merge_rank(self) -> u8 {
        match self {
            KycStatus::Verified => 5,
            KycStatus::Expired => 4,
            KycStatus::Pending => 3,
            KycStatus::Rejected => 2,
            KycStatus::NotStarted => 1,
        }
    }
}

/// A channel through which a customer reaches the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    MobileApp,
    Web,
    Branch,
    Partner,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::MobileApp, Channel::Web, Channel::Branch, Channel::Partner];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::MobileApp => "mobile_app",
            Channel::Web => "web",
            Channel::Branch => "branch",
            Channel::Partner => "partner",
        }
    }
}

/// The customer's login or reference in one channel (app user id, partner's open id, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelIdentity {
    pub channel: Channel,
    pub external_id: String,
    pub linked_at: DateTime<Utc>,
}

/// The legal identity document: resident ID for people, USCC for businesses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "number", rename_all = "snake_case")]
pub enum IdDocument {
    ResidentId(ResidentId),
    Uscc(Uscc),
}

impl IdDocument {
    pub fn as_str(&self) -> &str {
        match self {
            IdDocument::ResidentId(id) => id.as_str(),
            IdDocument::Uscc(code) => code.as_str(),
        }
    }
}

/// A customer master record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub kind: CustomerKind,
    pub name: String,
    pub id_document: IdDocument,
    pub phone: Option<MobilePhone>,
    pub kyc: KycStatus,
    pub identities: Vec<ChannelIdentity>,
    /// Records merged into this one (and, transitively, the ones merged into those).
    pub merged_from: Vec<CustomerId>,
    pub created_at: DateTime<Utc>,
}

impl Customer {
    pub fn new(kind: CustomerKind, name: &str, id_document: IdDocument, created_at: DateTime<Utc>) -> Self {
        Customer {
            id: CustomerId::new(),
            kind,
            name: name.to_string(),
            id_document,
            phone: None,
            kyc: KycStatus::NotStarted,
            identities: Vec::new(),
            merged_from: Vec::new(),
            created_at,
        }
    }

    /// Links a channel identity; linking the same (channel, external id) twice is a no-op.
    pub fn link(&mut self, channel: Channel, external_id: &str, at: DateTime<Utc>) {
        if !self.identities.iter().any(|i| i.channel == channel && i.external_id == external_id) {
            self.identities.push(ChannelIdentity { channel, external_id: external_id.to_string(), linked_at: at });
        }
    }

    pub fn channels(&self) -> Vec<Channel> {
        let mut c: Vec<Channel> = self.identities.iter().map(|i| i.channel).collect();
        c.sort();
        c.dedup();
        c
    }
}

/// Merges two records of the same person or business (same ID document).
///
/// The older record (earlier `created_at`, then smaller id) survives and keeps its id; the other
/// id and everything it had absorbed go to `merged_from`. Channel identities are united, the
/// strongest KYC status wins, a missing phone is filled from the other record.
pub fn merge(a: Customer, b: Customer) -> Result<Customer, CustomerError> {
    if a.id == b.id {
        return Err(CustomerError::MergeConflict { a: a.id, b: b.id, reason: "same record".into() });
    }
    if a.id_document != b.id_document {
        return Err(CustomerError::MergeConflict { a: a.id, b: b.id, reason: "ID documents differ".into() });
    }
    let (mut keep, gone) = if (a.created_at, a.id) <= (b.created_at, b.id) { (a, b) } else { (b, a) };
    for ident in gone.identities {
        keep.link(ident.channel, &ident.external_id, ident.linked_at);
    }
    if gone.kyc.merge_rank() > keep.kyc.merge_rank() {
        keep.kyc = gone.kyc;
    }
    if keep.phone.is_none() {
        keep.phone = gone.phone;
    }
    keep.merged_from.push(gone.id);
    keep.merged_from.extend(gone.merged_from);
    keep.merged_from.sort();
    keep.merged_from.dedup();
    Ok(keep)
}

/// An in-memory directory enforcing "one person, one customer ID": registering a record whose
/// ID document is already known merges it into the existing customer. The later storage layer
/// implements the same contract with unique indexes.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    customers: HashMap<CustomerId, Customer>,
    by_document: HashMap<String, CustomerId>,
    by_identity: HashMap<(Channel, String), CustomerId>,
    /// Old id -> surviving id, so references to merged records still resolve.
    redirects: HashMap<CustomerId, CustomerId>,
}

impl Directory {
    pub fn new() -> Self {
        Directory::default()
    }

    /// Adds a record, merging it with an existing customer that has the same ID document.
    /// Returns the surviving customer's id.
    pub fn register(&mut self, customer: Customer) -> Result<CustomerId, CustomerError> {
        for ident in &customer.identities {
            if let Some(owner) = self.by_identity.get(&(ident.channel, ident.external_id.clone())) {
                let same_person = self.customers.get(owner).is_some_and(|c| c.id_document == customer.id_document);
                if !same_person {
                    return Err(CustomerError::IdentityTaken {
                        channel: ident.channel,
                        external_id: ident.external_id.clone(),
                        owner: *owner,
                    });
                }
            }
        }
        let key = customer.id_document.as_str().to_string();
        let merged = match self.by_document.get(&key).and_then(|id| self.customers.remove(id)) {
            Some(existing) => merge(existing, customer)?,
            None => customer,
        };
        let id = merged.id;
        for old in &merged.merged_from {
            self.customers.remove(old);
            self.redirects.insert(*old, id);
        }
        for ident in &merged.identities {
            self.by_identity.insert((ident.channel, ident.external_id.clone()), id);
        }
        self.by_document.insert(key, id);
        self.customers.insert(id, merged);
        Ok(id)
    }

    /// Looks a customer up by id, following merges.
    pub fn get(&self, id: CustomerId) -> Option<&Customer> {
        let id = self.redirects.get(&id).copied().unwrap_or(id);
        self.customers.get(&id)
    }

    pub fn find_by_identity(&self, channel: Channel, external_id: &str) -> Option<&Customer> {
        self.by_identity.get(&(channel, external_id.to_string())).and_then(|id| self.customers.get(id))
    }

    pub fn find_by_document(&self, number: &str) -> Option<&Customer> {
        self.by_document.get(&number.trim().to_ascii_uppercase()).and_then(|id| self.customers.get(id))
    }

    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, day, 9, 0, 0).unwrap()
    }

    fn person(n: u128, day: u32) -> Customer {
        let doc = IdDocument::ResidentId(ResidentId::parse("11010519491231002X").unwrap());
        let mut c = Customer::new(CustomerKind::Individual, "张三", doc, at(day));
        c.id = CustomerId::from_u128(n);
        c
    }

    #[test]
    fn ids_round_trip() {
        let id = CustomerId::from_u128(42);
        let text = id.to_string();
        assert!(text.starts_with("C-"));
        assert_eq!(text.parse::<CustomerId>().unwrap(), id);
        assert!("C-nope".parse::<CustomerId>().is_err());
        assert_eq!(serde_json::from_str::<CustomerId>(&serde_json::to_string(&id).unwrap()).unwrap(), id);
        assert!(CustomerId::new() < CustomerId::new() || CustomerId::new() != CustomerId::new());
    }

    #[test]
    fn kyc_transitions() {
        use KycStatus::*;
        for k in KycStatus::ALL {
            assert_eq!(KycStatus::parse(k.as_str()), Some(k));
            assert!(!k.can_change_to(NotStarted));
        }
        assert_eq!(KycStatus::parse("approved"), None);
        assert!(NotStarted.can_change_to(Verified));
        assert!(Pending.can_change_to(Rejected));
        assert!(!Pending.can_change_to(Expired));
        assert!(!Rejected.can_change_to(Verified));
        assert!(Rejected.can_change_to(Pending));
        assert!(Verified.can_change_to(Expired));
        assert!(Expired.can_change_to(Verified));
        assert!(Verified.merge_rank() > Pending.merge_rank());
    }

    #[test]
    fn merge_keeps_history_and_unites_identities() {
        let mut a = person(1, 5);
        a.link(Channel::Branch, "B-7", at(5));
        let mut b = person(2, 3);
        b.kyc = KycStatus::Verified;
        b.link(Channel::MobileApp, "u-9", at(3));
        b.link(Channel::Branch, "B-7", at(3));
        b.merged_from.push(CustomerId::from_u128(0));
        let m = merge(a, b).unwrap();
        assert_eq!(m.id, CustomerId::from_u128(2), "the older record survives");
        assert_eq!(m.merged_from, vec![CustomerId::from_u128(0), CustomerId::from_u128(1)]);
        assert_eq!(m.kyc, KycStatus::Verified);
        assert_eq!(m.channels(), vec![Channel::MobileApp, Channel::Branch]);
        assert_eq!(m.identities.len(), 2);

        let mut other = person(3, 1);
        other.id_document = IdDocument::ResidentId(ResidentId::parse("110101199003074477").unwrap());
        assert!(matches!(merge(m, other), Err(CustomerError::MergeConflict { .. })));
    }

    #[test]
    fn directory_enforces_one_person_one_id() {
        let mut dir = Directory::new();
        let mut a = person(1, 2);
        a.link(Channel::Web, "w-1", at(2));
        let id = dir.register(a).unwrap();
        let mut b = person(2, 4);
        b.link(Channel::Partner, "p-1", at(4));
        assert_eq!(dir.register(b).unwrap(), id);
        assert_eq!(dir.len(), 1);
        assert_eq!(dir.get(CustomerId::from_u128(2)).unwrap().id, id);
        assert_eq!(dir.find_by_identity(Channel::Partner, "p-1").unwrap().id, id);
        assert_eq!(dir.find_by_document("11010519491231002x").unwrap().merged_from, vec![CustomerId::from_u128(2)]);

        let mut stranger = person(3, 5);
        stranger.id_document = IdDocument::ResidentId(ResidentId::parse("110101199003074477").unwrap());
        stranger.link(Channel::Web, "w-1", at(5));
        assert!(matches!(dir.register(stranger), Err(CustomerError::IdentityTaken { .. })));
    }
}
