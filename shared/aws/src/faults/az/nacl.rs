//! The EC2 calls behind `disable_az`: the AZ's subnets and whether each is opted in (its own
//! tags, or its VPC's), their network ACL associations, the deny-all NACL we create (tagged as
//! ours with the run's token), the swap, and the way back.

use crate::faults::context::failed;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, NetworkAcl, ResourceType, RuleAction, Tag, TagSpecification};
use shared::fleet::safety::targets::Candidate;
use shared::providers::ActivityError;
use std::collections::BTreeMap;

/// The tag our deny-all NACLs carry; its value is the token of the `disable_az` that made them.
pub const OURS: &str = "experiment-broker:disable-az";

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

fn tags(list: &[Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// The subnets of `az` as candidates (id → tags; attribute `vpc-id`), each carrying the opt-in
/// tag if its VPC carries it (a VPC opts in every subnet it holds).
pub async fn subnets(
    client: &Client,
    az: &str,
    opt_in: Option<&(String, String)>,
) -> Result<Vec<Candidate>, ActivityError> {
    let out = client
        .describe_subnets()
        .filters(filter("availability-zone", &[az.to_string()]))
        .send()
        .await
        .map_err(|e| failed("DescribeSubnets", az, &e))?;
    let mut found: Vec<Candidate> = out
        .subnets()
        .iter()
        .filter_map(|s| {
            Some(Candidate {
                id: s.subnet_id()?.to_string(),
                tags: tags(s.tags()),
                attributes: [("vpc-id".to_string(), s.vpc_id()?.to_string())].into(),
            })
        })
        .collect();
    let Some((key, value)) = opt_in else {
        return Ok(found);
    };
    let mut vpcs: Vec<String> = found
        .iter()
        .map(|c| c.attributes["vpc-id"].clone())
        .collect();
    vpcs.sort();
    vpcs.dedup();
    if vpcs.is_empty() {
        return Ok(found);
    }
    let out = client
        .describe_vpcs()
        .set_vpc_ids(Some(vpcs.clone()))
        .send()
        .await
        .map_err(|e| failed("DescribeVpcs", &vpcs.join(", "), &e))?;
    let opted: Vec<String> = out
        .vpcs()
        .iter()
        .filter(|v| tags(v.tags()).get(key) == Some(value))
        .filter_map(|v| v.vpc_id().map(str::to_string))
        .collect();
    for c in &mut found {
        if opted.contains(&c.attributes["vpc-id"]) {
            c.tags.insert(key.clone(), value.clone());
        }
    }
    Ok(found)
}

/// Each subnet's NACL association: subnet → (association id, NACL id).
pub async fn associations(
    client: &Client,
    subnets: &[String],
) -> Result<BTreeMap<String, (String, String)>, ActivityError> {
    Ok(associated(client, subnets)
        .await?
        .into_iter()
        .map(|(subnet, (association, acl, _))| (subnet, (association, acl)))
        .collect())
}

/// The subnets among `subnets` that sit on a deny-all NACL of ours already (another
/// `disable_az` holds them): disabling them again would save our NACL as their "previous" one,
/// and the two ways back would then strand them.
pub async fn already_disabled(
    client: &Client,
    subnets: &[String],
) -> Result<Vec<String>, ActivityError> {
    Ok(associated(client, subnets)
        .await?
        .into_iter()
        .filter(|(_, (_, _, ours))| *ours)
        .map(|(subnet, _)| subnet)
        .collect())
}

/// Each subnet's NACL association: subnet → (association id, NACL id, whether the NACL carries
/// [`OURS`]). One request per subnet (an AZ holds few): moto matches a multi-valued
/// `association.subnet-id` filter wrongly.
async fn associated(
    client: &Client,
    subnets: &[String],
) -> Result<BTreeMap<String, (String, String, bool)>, ActivityError> {
    let mut map = BTreeMap::new();
    for subnet in subnets {
        let out = client
            .describe_network_acls()
            .filters(filter(
                "association.subnet-id",
                std::slice::from_ref(subnet),
            ))
            .send()
            .await
            .map_err(|e| failed("DescribeNetworkAcls", subnet, &e))?;
        for acl in out.network_acls() {
            for a in acl.associations() {
                if let (Some(s), Some(id), Some(n)) = (
                    a.subnet_id(),
                    a.network_acl_association_id(),
                    a.network_acl_id(),
                ) && s == subnet
                {
                    let ours = tags(acl.tags()).contains_key(OURS);
                    map.insert(s.to_string(), (id.to_string(), n.to_string(), ours));
                }
            }
        }
    }
    Ok(map)
}

/// A NACL in `vpc` denying all traffic both ways, tagged `Name=Blackhole` (as the seed's) and
/// [`OURS`]=`token`.
pub async fn create_deny_all(
    client: &Client,
    vpc: &str,
    token: &str,
) -> Result<String, ActivityError> {
    let out = client
        .create_network_acl()
        .vpc_id(vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::NetworkAcl)
                .tags(Tag::builder().key("Name").value("Blackhole").build())
                .tags(Tag::builder().key(OURS).value(token).build())
                .build(),
        )
        .send()
        .await
        .map_err(|e| failed("CreateNetworkAcl", vpc, &e))?;
    let id = out
        .network_acl()
        .and_then(NetworkAcl::network_acl_id)
        .ok_or_else(|| ActivityError::Failed(format!("CreateNetworkAcl in {vpc} returned no id")))?
        .to_string();
    for egress in [true, false] {
        client
            .create_network_acl_entry()
            .network_acl_id(&id)
            .rule_number(100)
            .protocol("-1")
            .rule_action(RuleAction::Deny)
            .egress(egress)
            .cidr_block("0.0.0.0/0")
            .send()
            .await
            .map_err(|e| failed("CreateNetworkAclEntry", &id, &e))?;
    }
    Ok(id)
}

/// Move the association `association` onto `acl`.
pub async fn replace(client: &Client, association: &str, acl: &str) -> Result<(), String> {
    client
        .replace_network_acl_association()
        .association_id(association)
        .network_acl_id(acl)
        .send()
        .await
        .map(drop)
        .map_err(|e| failed("ReplaceNetworkAclAssociation", association, &e).to_string())
}

/// Our NACLs of `token` in `vpcs`: (id, how many subnets still use it).
pub async fn ours(
    client: &Client,
    vpcs: &[String],
    token: &str,
) -> Result<Vec<(String, usize)>, String> {
    let out = client
        .describe_network_acls()
        .filters(filter(&format!("tag:{OURS}"), &[token.to_string()]))
        .filters(filter("vpc-id", vpcs))
        .send()
        .await
        .map_err(|e| failed("DescribeNetworkAcls", token, &e).to_string())?;
    Ok(out
        .network_acls()
        .iter()
        .filter_map(|a| Some((a.network_acl_id()?.to_string(), a.associations().len())))
        .collect())
}

pub async fn delete(client: &Client, acl: &str) -> Result<(), String> {
    client
        .delete_network_acl()
        .network_acl_id(acl)
        .send()
        .await
        .map(drop)
        .map_err(|e| failed("DeleteNetworkAcl", acl, &e).to_string())
}
