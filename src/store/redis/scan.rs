//! SCAN over every key of the deployment: one Redis, or every master of a cluster (SCAN walks
//! one node's keys, so a cluster is walked master by master, found from `CLUSTER SLOTS`).

use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{RedisResult, Value};

use super::pool::RedisConnection;

/// Every key matching `pattern`, on every node that holds keys.
pub(super) async fn scan_all(
    conn: &mut RedisConnection,
    pattern: &str,
) -> RedisResult<Vec<String>> {
    match conn {
        RedisConnection::Single(c) => {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) =
                    scan(cursor, pattern).query_async(c).await?;
                keys.extend(batch);
                if next == 0 {
                    return Ok(keys);
                }
                cursor = next;
            }
        }
        RedisConnection::Cluster(c) => {
            let mut keys = Vec::new();
            for (host, port) in masters(c).await? {
                let mut cursor: u64 = 0;
                loop {
                    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port,
                    });
                    let reply = c.route_command(scan(cursor, pattern), route).await?;
                    let (next, batch): (u64, Vec<String>) = redis::from_redis_value(reply)?;
                    keys.extend(batch);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            Ok(keys)
        }
    }
}

fn scan(cursor: u64, pattern: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(1000);
    cmd
}

/// The address of every master serving slots.
async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut found: Vec<(String, u16)> = Vec::new();
    let Value::Array(ranges) = slots else {
        return Ok(found);
    };
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        // [start, end, [host, port, id, ...], replicas...]
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let host: Option<String> = master
            .first()
            .and_then(|v| redis::from_redis_value_ref(v).ok());
        let port: Option<u16> = master
            .get(1)
            .and_then(|v| redis::from_redis_value_ref(v).ok());
        if let (Some(host), Some(port)) = (host, port)
            && !found.contains(&(host.clone(), port))
        {
            found.push((host, port));
        }
    }
    Ok(found)
}
