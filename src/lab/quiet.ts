// What every host of a lab gets before its link comes up, whatever its backend: lab plumbing that
// keeps the capture to what the scenario does.

// Lab plumbing, not the scenario's choice: addresses usable at once (no DAD), and no router
// solicitations. A host's MLD reports have no sysctl (see QUIET_RULES).
export const BASE_SYSCTLS: Readonly<Record<string, string>> = {
  "net.ipv6.conf.all.accept_dad": "0",
  "net.ipv6.conf.default.accept_dad": "0",
  "net.ipv6.conf.all.router_solicitations": "0",
  "net.ipv6.conf.default.router_solicitations": "0",
  "net.ipv6.conf.default.accept_ra": "0",
};

/**
 * A host's MLD reports (and a router solicitation, should one be asked for), dropped at its own
 * output hook. The kernel reports every group an interface joins but all-nodes (mcast.c,
 * igmp6_group_added), and each address joins its solicited-node group: no sysctl stops that short of
 * disable_ipv6, and the hosts have IPv6 addresses. They would only bury the TCP exchange in the
 * capture; neighbour discovery, which TCP needs, passes. With no reports, the switch floods
 * multicast to every port (its snooping is off), so discovery never depends on one.
 */
export const QUIET_RULES = [
  "table ip6 sockprobe-quiet {",
  "  chain output { type filter hook output priority 0; policy accept;",
  "    icmpv6 type { mld-listener-report, mld-listener-done, mld2-listener-report, nd-router-solicit } counter drop",
  "  }",
  "}",
].join("\n");
