"""`fab setup` on several VPSs: the same stack as a Docker Swarm stack; on a second run, nothing changes.

Each step decides from every node's facts (read in parallel, one round trip per node) and acts only
where something is missing: on the node that lacks it, or on the first manager (the primary) for
what the swarm holds (its membership, labels, network and stack). Releases go to every node before
they go live, so a request served on any node finds the release another node's nginx chose.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .. import archive, assets, records
from ..commands import database, php_image, release, server, swarm
from ..config import PANELS, ROLES, Node, Settings, Site
from ..errors import FikasoError
from ..facts import Cluster, StackFacts, SwarmNode, cluster, database_logins, stack, swarm_node
from ..layout import Layout
from ..plan import Action, Outcome, Step, changed, unchanged
from ..swarm_stack import FILE_NAME, ROLE_LABEL, STACK
from .shared import SetupRequest, check_base_folder, edge_certificates, edge_proxies, make_bundle, site_checks


@dataclass
class SwarmSetupRun(SetupRequest):
    """A setup of every node of fikaso.nodes; `known` holds each node's facts by host name."""

    @property
    def layout(self) -> Layout:
        return Layout(self.settings.base_dir, swarm=True)

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.settings.nodes

    @property
    def primary(self) -> Node:
        return self.settings.primary

    def facts(self, node: Node) -> StackFacts:
        return self.known["stack"][node.host]

    def member(self, node: Node) -> SwarmNode:
        return self.known["swarm_node"][node.host]

    @property
    def cluster(self) -> Cluster:
        return self.known["cluster"][self.primary.host]

    @property
    def uid(self) -> str:
        return self.facts(self.primary).uid

    def bundle(self) -> archive.Archive:
        if self._bundle is None:
            uids = {self.facts(node).uid for node in self.nodes}
            if len(uids) > 1:
                raise FikasoError(f"The deploy user has different uids on the nodes ({', '.join(sorted(uids))})",
                                  "Create it with the same uid on every VPS (useradd --uid), so that files "
                                  "written on one node are the same user's on another")
            # The Swarm secrets' version: the alert files are no Swarm secret, and changing them must not
            # restart every service.
            stack_secrets = replace(self.secrets, webhook_url="", alert_ca=b"")
            self._bundle = make_bundle(self.settings, self.uid, server.secrets_archive(stack_secrets).sha256[:12])
        return self._bundle

    @property
    def php_tag(self) -> str:
        return php_image.tag(self.settings, self.uid)


def _each(run: SwarmSetupRun):
    return (stack(run.layout), swarm_node(), cluster(run.layout))


# ---- the steps --------------------------------------------------------------------------------

def docker(run: SwarmSetupRun) -> Outcome:
    for node in run.nodes:
        facts, member = run.facts(node), run.member(node)
        if not facts.docker:
            raise FikasoError(f"User {facts.user or '?'} on {node.host} cannot use the Docker engine",
                              "Install Docker (apt-get install docker.io on Debian/Ubuntu), start it, and add the "
                              f"user to the docker group on {node.host}, then log in again")
        if node != run.primary and member.state == "inactive" and not member.curl:
            raise FikasoError(f"{node.host} has no curl, which joining the swarm needs",
                              f"Install it on {node.host} (apt-get install curl)")
        if not node.address and not member.address:
            raise FikasoError(f"{node.host} has no default route, so Fikaso cannot tell its address",
                              f"Give it in fabric.yaml: address: under the {node.host} entry of fikaso.nodes")
    versions = sorted({run.facts(node).docker for node in run.nodes})
    return unchanged(f"{len(run.nodes)} nodes, docker {', '.join(versions)}")


def folders(run: SwarmSetupRun) -> Outcome:
    actions = []
    for node in run.nodes:
        facts = run.facts(node)
        check_base_folder(facts, run.layout, node.host)
        if facts.folders_missing:
            actions.append(Action(f"creating the folders on {node.host}", server.folders_script(run.layout, facts),
                                  on=node.host))
    where = ", ".join(a.on for a in actions)
    return changed(f"made on {where}", *actions) if actions else unchanged(str(run.layout.base))


def secrets(run: SwarmSetupRun) -> Outcome:
    payload = server.secrets_archive(run.secrets)
    script = server.secrets_script(run.layout, payload.sha256)
    actions = [Action(f"uploading the secrets to {node.host}", script, stdin=payload.data, on=node.host)
               for node in run.nodes if run.facts(node).secrets_hash != payload.sha256]
    return changed(f"uploaded to {len(actions)} node(s)", *actions) if actions else unchanged()


def form(run: SwarmSetupRun) -> Outcome:
    """The swarm, formed on the primary if it has none; a primary in a swarm but not a manager is an error."""
    member = run.member(run.primary)
    if member.state == "active" and member.manager:
        return unchanged(f"{run.primary.host} manages the swarm")
    if member.state != "inactive":
        raise FikasoError(f"{run.primary.host}, the first manager in fikaso.nodes, is in a swarm it does not manage "
                          f"(state {member.state})",
                          "Promote it (docker node promote on a manager), or run `docker swarm leave` on it")
    return changed(f"formed on {run.primary.host}",
                   Action(f"forming the swarm on {run.primary.host}", swarm.init_script(run.primary),
                          on=run.primary.host))


def join(run: SwarmSetupRun) -> Outcome:
    actions = []
    cluster_ = run.cluster
    manager = next((n for n in cluster_.nodes.values() if n["host"] and n["address"]), None)
    for node in run.nodes:
        if node == run.primary:
            continue
        member = run.member(node)
        if member.state == "active":
            if member.node_id not in cluster_.nodes:
                raise FikasoError(f"{node.host} is in another swarm", f"Run `docker swarm leave --force` on "
                                  f"{node.host} if that swarm is no longer used, then run `fab setup` again")
            continue
        token = cluster_.manager_token if "manager" in node.roles else cluster_.worker_token
        address = run.primary.address or run.member(run.primary).address or (manager or {}).get("address", "")
        actions.append(Action(f"joining {node.host} to the swarm", swarm.join_script(node),
                              stdin=swarm.join_request(token, address), on=node.host))
    return changed(f"{len(actions)} node(s) joined", *actions) if actions else \
        unchanged(f"{len(run.nodes)} nodes in the swarm")


def caught_up(run: SwarmSetupRun, node: Node) -> bool:
    """Whether the node has every live release (always, before any site is live)."""
    live = run.facts(run.primary).live
    return all(run.facts(node).live.get(site) == release_id for site, release_id in live.items())


# Each role's label, and the primary's fikaso.certificates (where certbot runs and `acme` serves).
LABELS = (*ROLES, "certificates")


def labels(run: SwarmSetupRun) -> Outcome:
    """Each node's roles as labels (fikaso.web=true, ...), which place the services. A node that lacks
    a live release (one that joined now) gets only its database label here: the tasks that would serve
    visitors come to it once it has every live release (the "new nodes" step)."""
    changes = []
    for node in run.nodes:
        node_id = run.member(node).node_id
        have = run.cluster.nodes.get(node_id, {}).get("labels", {})
        ready = caught_up(run, node)
        wanted = {*node.roles, *(["certificates"] if node == run.primary else [])}
        for role in LABELS:
            label = ROLE_LABEL.format(role=role)
            if role in wanted and have.get(label) != "true" and (ready or role in ("database", "certificates")):
                changes.append((node_id, role, True))
            elif role not in wanted and label in have:
                changes.append((node_id, role, False))
    configured = {run.member(node).node_id for node in run.nodes}
    (database_node,) = run.settings.with_role("database")
    for node_id, info in run.cluster.nodes.items():
        if node_id not in configured:    # left out of fikaso.nodes: no task of the stack stays there
            changes += [(node_id, role, False) for role in LABELS if ROLE_LABEL.format(role=role) in info["labels"]]
        elif info["labels"].get(ROLE_LABEL.format(role="database")) == "true" and \
                node_id != run.member(database_node).node_id:
            raise FikasoError(
                f"The database role moved to {database_node.host}, but MySQL's data is on {info['host']}: Swarm "
                "would start it there on an empty volume",
                "Give the database role back to the VPS that holds the data; to move the database, back it up "
                "(`fab backup.now`), set up the new node and restore it there")
    network = [] if run.cluster.network == "overlay" else [swarm.network_script()]
    if run.cluster.network not in ("", "overlay"):
        raise FikasoError(f"The network {swarm.NETWORK} on {run.primary.host} is a {run.cluster.network} network, "
                          "left by a one-VPS setup", f"Remove it there (docker compose down in {run.layout.stack}, "
                          f"then docker network rm {swarm.NETWORK}), then run `fab setup` again")
    if not changes and not network:
        return unchanged("roles labelled, overlay network present")
    script = "\n".join([swarm.label_script(changes), *network, *swarm.wait_converged_lines()]).strip()
    return changed(f"{len(changes)} label(s) set{', overlay network made' if network else ''}",
                   Action("labelling the nodes and making the network", script, on=run.primary.host))


def stack_bundle(run: SwarmSetupRun) -> Outcome:
    made = run.bundle()
    script = "\n".join([server.bundle_script(run.layout, made.sha256, run.settings.images["nginx"]),
                        swarm.reload_nginx_here_script()])
    actions = [Action(f"uploading the stack bundle to {node.host}", script, stdin=made.data, on=node.host)
               for node in run.nodes if run.facts(node).bundle_hash != made.sha256]
    return changed(f"{made.sha256[:12]} to {len(actions)} node(s)", *actions) if actions else \
        unchanged(made.sha256[:12])


def php(run: SwarmSetupRun) -> Outcome:
    tag = run.php_tag
    actions = [Action(f"building the PHP image {tag} on {node.host}",
                      php_image.build_script(run.settings, tag, run.uid), stdin=php_image.build_context().data,
                      on=node.host)
               for node in run.nodes if tag not in run.facts(node).images]
    return changed(f"{tag} built on {len(actions)} node(s)", *actions) if actions else unchanged(f"{tag} on every node")


def deploy_stack(run: SwarmSetupRun) -> Outcome:
    made = run.bundle()
    services = run.cluster.services
    converged = len(services) == len(swarm.SWARM_SERVICES) and all(
        v.split(" ")[0].split("/")[0] == v.split(" ")[0].split("/")[-1] for v in services.values())
    if run.cluster.deployed == made.sha256 and converged:
        return unchanged(f"{len(swarm.SWARM_SERVICES)} services running")
    return changed(f"{len(swarm.SWARM_SERVICES)} services running",
                   Action(f"deploying the stack ({FILE_NAME}) and waiting for every task",
                          swarm.deploy_script(run.layout, made.sha256), on=run.primary.host))


def databases(run: SwarmSetupRun) -> Outcome:
    (node,) = run.settings.with_role("database")
    if run.known["database_logins"][node.host]:
        return unchanged("logins work")
    return changed("databases and users ensured",
                   Action("creating the databases and users", database.bootstrap_script(run.layout), on="database"),
                   Action("checking the databases", database.logins_check(run.layout), on="database"))


def install_site(site: Site):
    def decide(run: SwarmSetupRun) -> Outcome:
        live = run.facts(run.primary).live.get(site.name)
        if live:    # a node without it gets a copy in the "catch up" step
            return unchanged(f"live release {live}")
        layout, release_id = run.layout, run.release_id
        with assets.shipped_tree(site) as tree:
            sending = release.payload(tree, release_id, {})
        actions = [Action(f"uploading {site.name} release {release_id} to every node",
                          release.upload_script(layout, site.name, release_id, None), stdin=sending.archive.data)]
        if site.name in PANELS:
            actions += [Action(f"installing {site.name} on every node (composer, caches)",
                               release.node_install_script(layout, site.name, release_id, run.uid, run.php_tag)),
                        Action(f"migrating {site.name}'s database",
                               release.migrate_script(layout, site.name, release_id, run.uid, run.php_tag),
                               on=run.primary.host)]
        record = records.release_record(release_id, run.actor, records.source_commit(site.source), "ok",
                                        image=run.php_tag if site.name in PANELS else "", note="installed by setup")
        actions += [Action(f"switching {site.name} on every node", release.switch_script(layout, site.name, release_id)),
                    Action("recording the release", records.record_script(layout, site.name, record, None),
                           on=run.primary.host)]
        return changed(f"release {release_id} on {len(run.nodes)} nodes", *actions)
    return Step(f"install {site.name}", decide)


def catch_up(run: SwarmSetupRun) -> Outcome:
    """A node that joined later gets each site's live release, copied from the primary (with its
    installed dependencies) and its caches made there, before any task that serves visitors runs on it."""
    actions = []
    primary = run.facts(run.primary)
    for node in run.nodes:
        for site, live in sorted(primary.live.items()):
            # Every kept release, so that a rollback finds its target on every node too; the live one last.
            missing = sorted(primary.releases.get(site, set()) - run.facts(node).releases.get(site, set()) - {live})
            missing += [live] if run.facts(node).live.get(site) != live else []
            for release_id in missing:
                lines = [release.receive_script(run.layout, site, release_id)]
                if site in PANELS:
                    lines.append(release.node_install_script(run.layout, site, release_id, run.uid, run.php_tag))
                if release_id == live:
                    lines.append(release.switch_script(run.layout, site, release_id))
                actions.append(Action(f"copying {site}'s release {release_id} to {node.host}", "\n".join(lines),
                                      on=node.host,
                                      stdin_from=(run.primary.host, release.send_script(run.layout, site, release_id))))
    where = sorted({action.on for action in actions})
    return changed(f"{len(actions)} release(s) copied to {', '.join(where)}", *actions) if actions else \
        unchanged("every node has every release")


def check_sites(run: SwarmSetupRun) -> Outcome:
    edges = len(run.settings.with_role("edge"))
    return site_checks(run.settings, run.layout, f"Look at `fab status` and the logs of {STACK}_{{name}}_nginx "
                       "(docker service logs on the primary)",
                       f"{len(run.settings.sites)} sites answer through the proxy on {edges} edge node(s)", on="edge")


def swarm_setup_steps(settings: Settings) -> list[Step]:
    each = lambda run: _each(run)  # noqa: E731
    return [
        Step("docker", docker, reads=each, each=True),
        Step("folders", folders),
        Step("secrets", secrets),
        Step("swarm", form),
        Step("join", join, reads=each, each=True),
        Step("bundle", stack_bundle),
        Step("php image", php),
        Step("certificates", lambda run: edge_certificates(run.settings, run.layout, run.known["stack"])),
        Step("proxy", lambda run: edge_proxies(run.settings, run.layout, run.known["stack"])),
        Step("labels", labels, reads=each, each=True),
        Step("stack", deploy_stack, reads=lambda run: (cluster(run.layout),), each=True),
        Step("databases", databases, reads=lambda run: (database_logins(run.layout),), each=True),
        *(install_site(site) for site in settings.sites),
        Step("catch up", catch_up, reads=each, each=True),
        Step("new nodes", labels, reads=each, each=True),
        Step("sites", check_sites),
    ]
