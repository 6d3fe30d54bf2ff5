//! Relationship graph of customers, devices, phones, IPs and accounts.
//!
//! Edges come from shared attributes (a customer used a device, phone or IP; owns an account)
//! and from transfers (account to account). Connected components are maintained incrementally
//! with union-find (edges are never removed), with per-component counts of customers and of
//! flagged (rejected or confirmed-fraud) customers, so the features of one applicant are cheap to
//! read at decision time. [`RelationshipGraph::communities`] lists components for ring detection.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// Node type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Customer,
    Device,
    Phone,
    Ip,
    Account,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Customer => "customer",
            NodeKind::Device => "device",
            NodeKind::Phone => "phone",
            NodeKind::Ip => "ip",
            NodeKind::Account => "account",
        }
    }
}

/// Why a customer is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerFlag {
    Rejected,
    ConfirmedFraud,
}

/// For one customer and one attribute kind: how many other customers share any such attribute
/// with them, and how many of those are flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SharedStats {
    pub customers: u32,
    pub flagged: u32,
}

/// Graph features of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GraphFeatures {
    pub device: SharedStats,
    pub phone: SharedStats,
    pub ip: SharedStats,
    /// Customers and flagged customers in the whole connected component (including this one).
    pub component_customers: u32,
    pub component_flagged: u32,
}

/// A connected component with at least two customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Community {
    pub customers: Vec<String>,
    pub flagged: u32,
    pub devices: u32,
    pub phones: u32,
    pub ips: u32,
    pub accounts: u32,
    pub edges: u32,
    /// Edges / nodes: above 1 means more links than a tree needs.
    pub edges_per_node: f64,
    pub flagged_share: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct CompStats {
    customers: u32,
    flagged: u32,
}

/// The graph. Not internally synchronised: wrap it in a lock to share it.
#[derive(Debug, Default)]
pub struct RelationshipGraph {
    index: [HashMap<String, u32>; 5],
    kinds: Vec<NodeKind>,
    names: Vec<String>,
    adj: Vec<Vec<u32>>,
    edges: HashSet<(u32, u32)>,
    flags: Vec<Option<CustomerFlag>>,
    parent: Vec<u32>,
    rank: Vec<u8>,
    comp: Vec<CompStats>,
    /// Neighbour lists longer than this are not expanded when computing shared stats (a shared
    /// NAT IP or a public device should not make every decision slow).
    pub fanout_cap: usize,
}

impl RelationshipGraph {
    pub fn new() -> Self {
        RelationshipGraph { fanout_cap: 1_000, ..Default::default() }
    }

    pub fn node_count(&self) -> usize {
        self.kinds.len()
    }
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }

    fn node(&mut self, kind: NodeKind, id: &str) -> u32 {
        if let Some(&n) = self.index[kind as usize].get(id) {
            return n;
        }
        let n = self.kinds.len() as u32;
        self.index[kind as usize].insert(id.to_string(), n);
        self.kinds.push(kind);
        self.names.push(id.to_string());
        self.adj.push(Vec::new());
        self.flags.push(None);
        self.parent.push(n);
        self.rank.push(0);
        self.comp.push(CompStats { customers: u32::from(kind == NodeKind::Customer), flagged: 0 });
        n
    }

    fn lookup(&self, kind: NodeKind, id: &str) -> Option<u32> {
        self.index[kind as usize].get(id).copied()
    }

    fn find(&self, mut x: u32) -> u32 {
        // No path compression on reads so lookups can take `&self`; union by rank keeps trees
        // logarithmic. Writes compress (see `find_mut`).
        while self.parent[x as usize] != x {
            x = self.parent[x as usize];
        }
        x
    }

    fn find_mut(&mut self, x: u32) -> u32 {
        let root = self.find(x);
        let mut cur = x;
        while self.parent[cur as usize] != root {
            let next = self.parent[cur as usize];
            self.parent[cur as usize] = root;
            cur = next;
        }
        root
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find_mut(a), self.find_mut(b));
        if ra == rb {
            return;
        }
        let (big, small) = if self.rank[ra as usize] >= self.rank[rb as usize] { (ra, rb) } else { (rb, ra) };
        self.parent[small as usize] = big;
        if self.rank[big as usize] == self.rank[small as usize] {
            self.rank[big as usize] += 1;
        }
        let s = self.comp[small as usize];
        let b = &mut self.comp[big as usize];
        b.customers += s.customers;
        b.flagged += s.flagged;
    }

    /// Adds an undirected edge between two nodes (created if new). Self-loops and duplicates are ignored.
    pub fn link(&mut self, a: (NodeKind, &str), b: (NodeKind, &str)) {
        let (x, y) = (self.node(a.0, a.1), self.node(b.0, b.1));
        if x == y {
            return;
        }
        if self.edges.insert((x.min(y), x.max(y))) {
            self.adj[x as usize].push(y);
            self.adj[y as usize].push(x);
            self.union(x, y);
        }
    }

    /// Whether the two nodes exist and are linked (read-only; no nodes are created).
    pub fn has_link(&self, a: (NodeKind, &str), b: (NodeKind, &str)) -> bool {
        match (self.lookup(a.0, a.1), self.lookup(b.0, b.1)) {
            (Some(x), Some(y)) => self.edges.contains(&(x.min(y), x.max(y))),
            _ => false,
        }
    }

    /// How many distinct attribute nodes of `kind` a customer is linked to.
    pub fn attribute_count(&self, customer: &str, kind: NodeKind) -> u32 {
        self.lookup(NodeKind::Customer, customer)
            .map_or(0, |c| self.adj[c as usize].iter().filter(|&&n| self.kinds[n as usize] == kind).count() as u32)
    }

    /// Records that a customer used / owns an attribute node.
    pub fn link_customer(&mut self, customer: &str, kind: NodeKind, id: &str) {
        self.link((NodeKind::Customer, customer), (kind, id));
    }

    /// Records a transfer between two accounts.
    pub fn link_transfer(&mut self, from_account: &str, to_account: &str) {
        self.link((NodeKind::Account, from_account), (NodeKind::Account, to_account));
    }

    /// Flags a customer; a confirmed-fraud flag is never downgraded to rejected.
    pub fn flag_customer(&mut self, customer: &str, flag: CustomerFlag) {
        let n = self.node(NodeKind::Customer, customer);
        let old = self.flags[n as usize];
        if old.is_some_and(|o| o >= flag) {
            return;
        }
        self.flags[n as usize] = Some(flag);
        if old.is_none() {
            let r = self.find_mut(n);
            self.comp[r as usize].flagged += 1;
        }
    }

    pub fn flag_of(&self, customer: &str) -> Option<CustomerFlag> {
        self.lookup(NodeKind::Customer, customer).and_then(|n| self.flags[n as usize])
    }

    fn shared(&self, c: u32, kind: NodeKind, seen: &mut HashSet<u32>) -> SharedStats {
        seen.clear();
        for &attr in &self.adj[c as usize] {
            if self.kinds[attr as usize] != kind || self.adj[attr as usize].len() > self.fanout_cap {
                continue;
            }
            for &other in &self.adj[attr as usize] {
                if other != c && self.kinds[other as usize] == NodeKind::Customer {
                    seen.insert(other);
                }
            }
        }
        SharedStats {
            customers: seen.len() as u32,
            flagged: seen.iter().filter(|&&o| self.flags[o as usize].is_some()).count() as u32,
        }
    }

    /// Features of a customer (all zero for an unknown customer).
    pub fn customer_features(&self, customer: &str) -> GraphFeatures {
        let Some(c) = self.lookup(NodeKind::Customer, customer) else { return GraphFeatures::default() };
        let mut seen = HashSet::new();
        let comp = self.comp[self.find(c) as usize];
        GraphFeatures {
            device: self.shared(c, NodeKind::Device, &mut seen),
            phone: self.shared(c, NodeKind::Phone, &mut seen),
            ip: self.shared(c, NodeKind::Ip, &mut seen),
            component_customers: comp.customers,
            component_flagged: comp.flagged,
        }
    }

    /// Connected components with at least `min_customers` customers and `min_flagged` flagged
    /// customers, largest flagged share first: candidate fraud rings.
    pub fn communities(&self, min_customers: u32, min_flagged: u32) -> Vec<Community> {
        let mut groups: HashMap<u32, Vec<u32>> = HashMap::new();
        for n in 0..self.kinds.len() as u32 {
            let r = self.find(n);
            let s = self.comp[r as usize];
            if s.customers >= min_customers.max(2) && s.flagged >= min_flagged {
                groups.entry(r).or_default().push(n);
            }
        }
        let mut out: Vec<Community> = groups
            .into_values()
            .map(|nodes| {
                let mut c = Community {
                    customers: Vec::new(),
                    flagged: 0,
                    devices: 0,
                    phones: 0,
                    ips: 0,
                    accounts: 0,
                    edges: 0,
                    edges_per_node: 0.0,
                    flagged_share: 0.0,
                };
                let mut degree_sum = 0usize;
                for &n in &nodes {
                    degree_sum += self.adj[n as usize].len();
                    match self.kinds[n as usize] {
                        NodeKind::Customer => {
                            c.customers.push(self.names[n as usize].clone());
                            c.flagged += u32::from(self.flags[n as usize].is_some());
                        }
                        NodeKind::Device => c.devices += 1,
                        NodeKind::Phone => c.phones += 1,
                        NodeKind::Ip => c.ips += 1,
                        NodeKind::Account => c.accounts += 1,
                    }
                }
                c.customers.sort();
                c.edges = (degree_sum / 2) as u32;
                c.edges_per_node = f64::from(c.edges) / nodes.len() as f64;
                c.flagged_share = f64::from(c.flagged) / c.customers.len() as f64;
                c
            })
            .collect();
        out.sort_by(|a, b| b.flagged_share.total_cmp(&a.flagged_share).then(b.customers.len().cmp(&a.customers.len())));
        out
    }
}

/// One node of a ring as people are shown it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingNode {
    pub kind: NodeKind,
    /// A customer's id; devices, phones, IPs and accounts are numbered per kind (`device 1`),
    /// never shown by their value (a phone number or an IP address is personal data).
    pub label: String,
    pub flag: Option<CustomerFlag>,
}

/// The nodes and edges of one connected component, for drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingGraph {
    pub nodes: Vec<RingNode>,
    /// Pairs of indexes into `nodes`.
    pub edges: Vec<(u32, u32)>,
    /// The component has more than the nodes returned.
    pub truncated: bool,
}

impl RelationshipGraph {
    /// The component holding `customer`, breadth first from it, at most `max_nodes` nodes;
    /// `None` when the customer is not in the graph.
    pub fn ring_graph(&self, customer: &str, max_nodes: usize) -> Option<RingGraph> {
        let start = self.lookup(NodeKind::Customer, customer)?;
        let mut order: Vec<u32> = vec![start];
        let mut position: HashMap<u32, u32> = HashMap::from([(start, 0)]);
        let mut truncated = false;
        let mut next = 0;
        while next < order.len() {
            let n = order[next];
            next += 1;
            for &m in &self.adj[n as usize] {
                if position.contains_key(&m) {
                    continue;
                }
                if order.len() >= max_nodes {
                    truncated = true;
                    continue;
                }
                position.insert(m, order.len() as u32);
                order.push(m);
            }
        }
        let mut numbered: HashMap<NodeKind, u32> = HashMap::new();
        let nodes = order
            .iter()
            .map(|&n| {
                let kind = self.kinds[n as usize];
                let label = if kind == NodeKind::Customer {
                    self.names[n as usize].clone()
                } else {
                    let k = numbered.entry(kind).or_default();
                    *k += 1;
                    format!("{} {k}", kind.as_str())
                };
                RingNode { kind, label, flag: self.flags[n as usize] }
            })
            .collect();
        let mut edges: Vec<(u32, u32)> = order
            .iter()
            .flat_map(|&a| self.adj[a as usize].iter().map(move |&b| (a, b)))
            .filter(|(a, b)| a < b)
            .filter_map(|(a, b)| Some((*position.get(&a)?, *position.get(&b)?)))
            .collect();
        edges.sort_unstable();
        Some(RingGraph { nodes, edges, truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_device_features_and_rings() {
        let mut g = RelationshipGraph::new();
        // A ring: 8 customers on one device, 3 of them flagged.
        for i in 0..8 {
            g.link_customer(&format!("r{i}"), NodeKind::Device, "dev-farm");
            g.link_customer(&format!("r{i}"), NodeKind::Account, &format!("acc-r{i}"));
        }
        g.flag_customer("r1", CustomerFlag::ConfirmedFraud);
        g.flag_customer("r2", CustomerFlag::Rejected);
        g.flag_customer("r3", CustomerFlag::Rejected);
        g.flag_customer("r3", CustomerFlag::ConfirmedFraud);
        g.flag_customer("r3", CustomerFlag::Rejected); // not downgraded
        assert_eq!(g.flag_of("r3"), Some(CustomerFlag::ConfirmedFraud));
        // An honest pair sharing a phone, linked to nobody else.
        g.link_customer("h1", NodeKind::Phone, "p1");
        g.link_customer("h2", NodeKind::Phone, "p1");
        g.link_customer("h1", NodeKind::Device, "dev-h1");
        let ring = g.ring_graph("r0", 100).unwrap();
        assert_eq!(ring.nodes[0].label, "r0");
        assert_eq!(ring.nodes.iter().filter(|n| n.kind == NodeKind::Customer).count(), 8);
        assert!(ring.nodes.iter().any(|n| n.label == "device 1"), "devices are numbered, not named");
        assert!(!ring.nodes.iter().any(|n| n.label.contains("dev-farm")));
        assert_eq!(ring.edges.len(), 16, "8 device links and 8 account links");
        assert!(!ring.truncated);
        assert!(g.ring_graph("r0", 3).unwrap().truncated);
        assert!(g.ring_graph("nobody", 10).is_none());
        // A transfer connects an outsider's account into the ring.
        g.link_customer("x", NodeKind::Account, "acc-x");
        g.link_transfer("acc-x", "acc-r0");

        let f = g.customer_features("r0");
        assert_eq!(f.device, SharedStats { customers: 7, flagged: 3 });
        assert_eq!(f.phone, SharedStats::default());
        assert_eq!((f.component_customers, f.component_flagged), (9, 3));
        let x = g.customer_features("x");
        assert_eq!(x.device.customers, 0);
        assert_eq!(x.component_flagged, 3);
        assert_eq!(g.customer_features("h1").phone, SharedStats { customers: 1, flagged: 0 });
        assert_eq!(g.customer_features("nobody"), GraphFeatures::default());

        let rings = g.communities(3, 1);
        assert_eq!(rings.len(), 1);
        assert_eq!(rings[0].customers.len(), 9);
        assert_eq!((rings[0].flagged, rings[0].devices, rings[0].accounts), (3, 1, 9));
        assert_eq!(rings[0].edges, 8 + 8 + 1 + 1);
        assert_eq!(g.communities(2, 0).len(), 2);

        // Duplicate links change nothing.
        let edges = g.edge_count();
        g.link_customer("r0", NodeKind::Device, "dev-farm");
        assert_eq!(g.edge_count(), edges);
        // Fan-out cap skips hub attributes.
        g.fanout_cap = 4;
        assert_eq!(g.customer_features("r0").device.customers, 0);
    }
}
