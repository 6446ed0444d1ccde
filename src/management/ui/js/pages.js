/* Warren management UI: the Connections, Channels, Exchanges and Queues
   tabs. Lists are paged, filtered and sorted by the API itself (`page`,
   `page_size`, `name`, `use_regex`, `sort`, `sort_reverse`), as RabbitMQ's
   UI does; detail pages act through RabbitMQ's endpoints (declare, delete,
   purge, bind, publish, get). */
"use strict";

(() => {
  const { h, $, enc, table, facts, form, field, check, select, textarea, jsonField, fmtNum, fmtRate, fmtBytes, fmtArgs, showError, notice, api } = W;

  /* ---------- paged lists ---------- */

  const lists = {};
  function listState(tab, sort) {
    return (lists[tab] = lists[tab] || { page: 1, pageSize: 100, name: "", regex: false, sort, reverse: false });
  }

  /** The filter / paging controls of a list; `reload` re-reads it. */
  function listControls(tab, st, reload) {
    return h("div", { class: "controls", id: tab + "-controls" },
      h("label", {}, "Filter: ", h("input", { id: tab + "-filter", value: st.name, oninput: (e) => { st.name = e.target.value; st.page = 1; reload(); } })),
      h("label", {}, h("input", { type: "checkbox", id: tab + "-regex", checked: st.regex, onchange: (e) => { st.regex = e.target.checked; reload(); } }), " Regex"),
      h("label", {}, "Page size: ", h("select", { id: tab + "-page-size", onchange: (e) => { st.pageSize = Number(e.target.value); st.page = 1; reload(); } },
        [50, 100, 200, 500].map((n) => h("option", { value: n, selected: n === st.pageSize }, n)))),
      h("span", { id: tab + "-pager" }));
  }

  function listQuery(st) {
    const q = new URLSearchParams({ page: st.page, page_size: st.pageSize, name: st.name, use_regex: st.regex, pagination: true });
    if (st.sort) { q.set("sort", st.sort); q.set("sort_reverse", st.reverse); }
    return q.toString();
  }

  /** Reads one page of `path` and draws it in `#tab-list`. */
  async function showPage(tab, path, st, columns, reload) {
    const box = $(tab + "-list");
    if (!box) return;
    let page;
    try { page = await api("GET", path + "?" + listQuery(st)); } catch (e) {
      if (e.body && e.body.error === "page_out_of_range" && st.page > 1) { st.page = 1; return reload(); }
      throw e;
    }
    const onSort = (key) => { st.reverse = st.sort === key ? !st.reverse : false; st.sort = key; reload(); };
    box.replaceChildren(table(columns, page.items || [], { id: tab + "-table", sort: { key: st.sort, reverse: st.reverse }, onSort }));
    const pages = Math.max(1, page.page_count || 0);
    const pager = $(tab + "-pager");
    pager.replaceChildren(
      h("button", { type: "button", disabled: st.page <= 1, onclick: () => { st.page--; reload(); } }, "‹"),
      ` Page ${page.page} of ${pages} `,
      h("button", { type: "button", disabled: st.page >= pages, onclick: () => { st.page++; reload(); } }, "›"),
      h("span", { class: "muted", id: tab + "-count" }, ` ${page.filtered_count} of ${page.total_count} items`));
  }

  /** A list tab: its controls and table, then its add form. */
  function listTab(r, tab, heading, reload, title, f) {
    r.main.append(h("h1", {}, heading), listControls(tab, listState(tab, "name"), reload), h("div", { id: tab + "-list" }), title, f);
    fillVhosts(f);
  }

  /** After an add form succeeded: say so, empty the form, re-read the list. */
  async function added(f, text, reload) {
    notice(text);
    f.reset();
    await reload();
  }

  const link = (tab, vhost, name, text) => h("a", { href: `#/${tab}/${enc(vhost)}/${enc(name)}` }, text ?? name);
  const vhostCol = { label: "Virtual host", value: (r) => r.vhost, sort: "vhost" };

  async function vhostOptions() {
    try { return (await api("GET", "/vhosts")).map((v) => v.name); } catch (_) { return ["/"]; }
  }
  async function fillVhosts(f) {
    const names = await vhostOptions();
    const sel = f.elements.vhost;
    sel.replaceChildren(...names.map((n) => h("option", { value: n }, n)));
  }

  function confirmThen(text, action) {
    return async () => {
      if (!window.confirm(text)) return;
      try { await action(); } catch (e) { showError(e); }
    };
  }

  /* ---------- Connections and Channels ---------- */

  W.pages.connections = {
    render(r) {
      r.main.append(h("h1", {}, "Connections"), listControls("connections", listState("connections", "name"), () => this.update()), h("div", { id: "connections-list" }));
    },
    update() {
      const close = (c) => h("button", { type: "button", class: "danger", onclick: confirmThen(`Close connection ${c.name}?`, async () => {
        await api("DELETE", "/connections/" + enc(c.name), undefined, undefined, { "X-Reason": "Closed via management plugin" });
        notice("Connection closed");
        await this.update();
      }) }, "Close");
      return showPage("connections", "/connections", listState("connections", "name"), [
        vhostCol, { label: "Name", value: (c) => c.name, sort: "name" }, { label: "User", value: (c) => c.user, sort: "user" },
        { label: "State", value: (c) => c.state }, { label: "Protocol", value: (c) => c.protocol },
        { label: "Channels", value: (c) => fmtNum(c.channels), num: true, sort: "channels" },
        { label: "From client", value: (c) => fmtRate(c, "recv_oct") }, { label: "To client", value: (c) => fmtRate(c, "send_oct") },
        { label: "", value: close }], () => this.update());
    },
  };

  W.pages.channels = {
    render(r) {
      r.main.append(h("h1", {}, "Channels"), listControls("channels", listState("channels", "name"), () => this.update()), h("div", { id: "channels-list" }));
    },
    update() {
      return showPage("channels", "/channels", listState("channels", "name"), [
        { label: "Channel", value: (c) => c.name, sort: "name" }, vhostCol, { label: "User", value: (c) => c.user, sort: "user" },
        { label: "Mode", value: (c) => (c.confirm ? "C" : "") + (c.transactional ? "T" : "") },
        { label: "State", value: (c) => c.state }, { label: "Consumers", value: (c) => fmtNum(c.consumer_count), num: true, sort: "consumer_count" },
        { label: "Unacked", value: (c) => fmtNum(c.messages_unacknowledged), num: true, sort: "messages_unacknowledged" },
        { label: "Prefetch", value: (c) => fmtNum(c.prefetch_count), num: true },
        { label: "Publish", value: (c) => fmtRate(c.message_stats, "publish") }], () => this.update());
    },
  };

  /* ---------- Exchanges ---------- */

  W.pages.exchanges = {
    render(r) {
      if (r.args.length >= 2) return exchangeDetail(r, r.args[0], r.args[1]);
      const reload = () => this.update(r);
      const [title, f] = form("add-exchange", "Add a new exchange", [
        select("Virtual host", "vhost", ["/"]), field("Name", "name", { required: true }),
        select("Type", "type", ["direct", "fanout", "topic", "headers", "x-delayed-message"], "direct"),
        select("Durability", "durable", [["true", "Durable"], ["false", "Transient"]], "true"),
        select("Auto delete", "auto_delete", [["false", "No"], ["true", "Yes"]], "false"),
        select("Internal", "internal", [["false", "No"], ["true", "Yes"]], "false"),
        textarea("Arguments (JSON)", "arguments", '{"alternate-exchange": "ae"}'),
      ], "Add exchange", async (f) => {
        const e = f.elements;
        await api("PUT", `/exchanges/${enc(e.vhost.value)}/${enc(e.name.value)}`, {
          type: e.type.value, durable: e.durable.value === "true", auto_delete: e.auto_delete.value === "true",
          internal: e.internal.value === "true", arguments: jsonField(f, "arguments") });
        await added(f, `Exchange ${e.name.value} declared`, reload);
      });
      listTab(r, "exchanges", "Exchanges", reload, title, f);
    },
    update(r) {
      if (r && r.args.length >= 2) return exchangeUpdate(r.args[0], r.args[1]);
      return showPage("exchanges", "/exchanges", listState("exchanges", "name"), [
        vhostCol, { label: "Name", value: (x) => link("exchanges", x.vhost, x.name || "amq.default", x.name || "(AMQP default)"), sort: "name" },
        { label: "Type", value: (x) => x.type, sort: "type" },
        { label: "Features", value: (x) => [x.durable ? h("span", { class: "tag", title: "durable" }, "D") : null,
          x.auto_delete ? h("span", { class: "tag", title: "auto-delete" }, "AD") : null, x.internal ? h("span", { class: "tag" }, "I") : null, fmtArgs(x.arguments)] },
        { label: "Policy", value: (x) => x.policy || "" },
        { label: "Message rate in", value: (x) => fmtRate(x.message_stats, "publish_in") },
        { label: "Message rate out", value: (x) => fmtRate(x.message_stats, "publish_out") }], () => this.update(r));
    },
  };

  function exchangeDetail(r, vhost, name) {
    const path = `/exchanges/${enc(vhost)}/${enc(name)}`;
    const [pubTitle, pub] = form("publish-message", "", [
      field("Routing key", "routing_key"),
      select("Delivery mode", "delivery_mode", [["1", "1 - Non-persistent"], ["2", "2 - Persistent"]], "1"),
      textarea("Headers (JSON)", "headers", '{"x-example": "value"}'),
      textarea("Properties (JSON)", "properties", '{"content_type": "text/plain", "expiration": "60000"}'),
      textarea("Payload", "payload", ""),
      select("Payload encoding", "payload_encoding", [["string", "String"], ["base64", "Base64"]], "string"),
    ], "Publish message", async (f) => {
      const e = f.elements;
      const properties = Object.assign({ delivery_mode: Number(e.delivery_mode.value), headers: jsonField(f, "headers") }, jsonField(f, "properties"));
      const res = await api("POST", path + "/publish", { properties, routing_key: e.routing_key.value, payload: e.payload.value, payload_encoding: e.payload_encoding.value });
      notice(res && res.routed ? "Message published." : "Message published, but not routed.");
    });
    const [bindTitle, bind] = form("add-exchange-binding", "Add binding from this exchange", [
      select("To", "kind", [["q", "To queue"], ["e", "To exchange"]], "q"), field("Destination", "destination", { required: true }),
      field("Routing key", "routing_key"), textarea("Arguments (JSON)", "arguments", ""),
    ], "Bind", async (f) => {
      const e = f.elements;
      await api("POST", `/bindings/${enc(vhost)}/e/${enc(name)}/${e.kind.value}/${enc(e.destination.value)}`, { routing_key: e.routing_key.value, arguments: jsonField(f, "arguments") });
      notice("Binding added");
      await exchangeUpdate(vhost, name);
    });
    r.main.append(h("h1", {}, "Exchange: ", h("b", {}, name === "amq.default" ? "(AMQP default)" : name), h("span", { class: "muted" }, ` in virtual host ${vhost}`)),
      h("h2", {}, "Details"), h("div", { id: "exchange-facts" }),
      h("h2", {}, "Bindings"), h("div", { id: "exchange-bindings" }), bindTitle, bind,
      h("h2", {}, "Publish message"), pubTitle, pub,
      h("h2", {}, "Delete this exchange"),
      h("button", { id: "delete-exchange", class: "danger", type: "button", onclick: confirmThen(`Delete exchange ${name}?`, async () => {
        await api("DELETE", path);
        location.hash = "#/exchanges";
      }) }, "Delete"));
  }

  async function exchangeUpdate(vhost, name) {
    const path = `/exchanges/${enc(vhost)}/${enc(name)}`;
    const x = await api("GET", path);
    $("exchange-facts") && $("exchange-facts").replaceChildren(facts([["Type", x.type], ["Durable", String(x.durable)], ["Auto delete", String(x.auto_delete)],
      ["Internal", String(x.internal)], ["Arguments", JSON.stringify(x.arguments || {})], ["Policy", x.policy || ""]]));
    let bindings;
    try { bindings = await api("GET", path + "/bindings/source"); } catch (e) {
      $("exchange-bindings").replaceChildren(h("p", { class: "error" }, e.describe ? e.describe() : String(e)));
      return;
    }
    $("exchange-bindings").replaceChildren(bindingTable(vhost, bindings, "destination"));
  }

  /** Bindings, each with an Unbind button (DELETE by properties_key). */
  function bindingTable(vhost, bindings, show) {
    const unbind = (b) => b.source === "" ? h("span", { class: "muted" }, "(default binding)") :
      h("button", { type: "button", onclick: confirmThen("Remove this binding?", async () => {
        await api("DELETE", `/bindings/${enc(vhost)}/e/${enc(b.source)}/${b.destination_type === "queue" ? "q" : "e"}/${enc(b.destination)}/${enc(b.properties_key)}`);
        notice("Binding removed");
        await W.route.page.update(W.route);
      }) }, "Unbind");
    return table([
      show === "source" ? { label: "From", value: (b) => b.source === "" ? "(Default exchange binding)" : link("exchanges", vhost, b.source) }
        : { label: "To", value: (b) => link(b.destination_type === "queue" ? "queues" : "exchanges", vhost, b.destination) },
      { label: "Routing key", value: (b) => b.routing_key }, { label: "Arguments", value: (b) => fmtArgs(b.arguments) },
      { label: "", value: unbind }], bindings);
  }
  W.bindingTable = bindingTable;

  /* ---------- Queues ---------- */

  W.pages.queues = {
    render(r) {
      if (r.args.length >= 2) return queueDetail(r, r.args[0], r.args[1]);
      const reload = () => this.update(r);
      const [title, f] = form("add-queue", "Add a new queue", [
        select("Virtual host", "vhost", ["/"]), select("Type", "type", ["classic", "quorum", "stream"], "classic"),
        field("Name", "name", { required: true, id: "add-queue-name" }),
        select("Durability", "durable", [["true", "Durable"], ["false", "Transient"]], "true"),
        select("Auto delete", "auto_delete", [["false", "No"], ["true", "Yes"]], "false"),
        textarea("Arguments (JSON)", "arguments", '{"x-message-ttl": 60000, "x-max-length": 1000}'),
      ], "Add queue", async (f) => {
        const e = f.elements;
        const args = jsonField(f, "arguments");
        if (e.type.value !== "classic") args["x-queue-type"] = e.type.value;
        await api("PUT", `/queues/${enc(e.vhost.value)}/${enc(e.name.value)}`, { durable: e.durable.value === "true", auto_delete: e.auto_delete.value === "true", arguments: args });
        await added(f, `Queue ${e.name.value} declared`, reload);
      });
      listTab(r, "queues", "Queues", reload, title, f);
    },
    update(r) {
      if (r && r.args.length >= 2) return queueUpdate(r.args[0], r.args[1]);
      return showPage("queues", "/queues", listState("queues", "name"), [
        vhostCol, { label: "Name", value: (q) => link("queues", q.vhost, q.name), sort: "name" },
        { label: "Type", value: (q) => q.type, sort: "type" },
        { label: "Features", value: (q) => [q.durable ? h("span", { class: "tag", title: "durable" }, "D") : null,
          q.auto_delete ? h("span", { class: "tag", title: "auto-delete" }, "AD") : null,
          q.exclusive ? h("span", { class: "tag", title: "exclusive" }, "Excl") : null, fmtArgs(q.arguments)] },
        { label: "State", value: (q) => q.state, sort: "state" },
        { label: "Ready", value: (q) => fmtNum(q.messages_ready), num: true, sort: "messages_ready" },
        { label: "Unacked", value: (q) => fmtNum(q.messages_unacknowledged), num: true, sort: "messages_unacknowledged" },
        { label: "Total", value: (q) => h("span", { class: "messages", "data-queue": q.name }, fmtNum(q.messages)), num: true, sort: "messages" },
        { label: "Consumers", value: (q) => fmtNum(q.consumers), num: true, sort: "consumers" },
        { label: "Incoming", value: (q) => fmtRate(q.message_stats, "publish") },
        { label: "Deliver / get", value: (q) => fmtRate(q.message_stats, "deliver_get") },
        { label: "Ack", value: (q) => fmtRate(q.message_stats, "ack") }], () => this.update(r));
    },
  };

  function queueDetail(r, vhost, name) {
    const path = `/queues/${enc(vhost)}/${enc(name)}`;
    const [bindTitle, bind] = form("add-queue-binding", "Add binding to this queue", [
      field("From exchange", "source", { required: true }), field("Routing key", "routing_key"), textarea("Arguments (JSON)", "arguments", ""),
    ], "Bind", async (f) => {
      const e = f.elements;
      await api("POST", `/bindings/${enc(vhost)}/e/${enc(e.source.value)}/q/${enc(name)}`, { routing_key: e.routing_key.value, arguments: jsonField(f, "arguments") });
      notice("Binding added");
      await queueUpdate(vhost, name);
    });
    const [getTitle, get] = form("get-messages", "", [
      h("p", { class: "muted" }, "Getting messages from a queue is a destructive action unless they are requeued."),
      select("Ack mode", "ackmode", [["ack_requeue_true", "Nack message requeue true"], ["ack_requeue_false", "Automatic ack"],
        ["reject_requeue_true", "Reject requeue true"], ["reject_requeue_false", "Reject requeue false"]], "ack_requeue_true"),
      select("Encoding", "encoding", [["auto", "Automatic string/base64"], ["base64", "Base64"]], "auto"),
      field("Messages", "count", { type: "number", min: 1, max: 1000, value: 1 }),
    ], "Get Message(s)", async (f) => {
      const e = f.elements;
      const msgs = await api("POST", path + "/get", { count: Number(e.count.value), ackmode: e.ackmode.value, encoding: e.encoding.value, truncate: 50000 });
      $("got-messages").replaceChildren(...(msgs.length ? msgs.map((m, i) => h("div", { class: "message" },
        h("b", {}, `Message ${i + 1}`), facts([["Exchange", m.exchange || "(AMQP default)"], ["Routing key", m.routing_key], ["Redelivered", String(m.redelivered)],
          ["Remaining messages", fmtNum(m.message_count)], ["Properties", JSON.stringify(m.properties || {})],
          ["Payload", `${fmtBytes(m.payload_bytes)}, encoding: ${m.payload_encoding}`]]), h("pre", {}, m.payload))) : [h("p", {}, "Queue is empty")]));
    });
    r.main.append(h("h1", {}, "Queue: ", h("b", {}, name), h("span", { class: "muted" }, ` in virtual host ${vhost}`)),
      h("h2", {}, "Overview"), h("div", { id: "queue-facts" }),
      h("h2", {}, "Consumers"), h("div", { id: "queue-consumers" }),
      h("h2", {}, "Bindings"), h("div", { id: "queue-bindings" }), bindTitle, bind,
      h("h2", {}, "Get messages"), getTitle, get, h("div", { id: "got-messages" }),
      h("h2", {}, "Delete / purge"),
      h("div", { class: "controls" },
        h("button", { id: "purge-queue", type: "button", onclick: confirmThen(`Purge all messages of queue ${name}?`, async () => {
          await api("DELETE", path + "/contents");
          notice("Queue purged");
          await queueUpdate(vhost, name);
        }) }, "Purge Messages"),
        h("button", { id: "delete-queue", class: "danger", type: "button", onclick: confirmThen(`Delete queue ${name}?`, async () => {
          await api("DELETE", path);
          notice(`Queue ${name} deleted`);
          location.hash = "#/queues";
        }) }, "Delete Queue")));
  }

  async function queueUpdate(vhost, name) {
    const path = `/queues/${enc(vhost)}/${enc(name)}`;
    const q = await api("GET", path);
    if (!$("queue-facts")) return;
    $("queue-facts").replaceChildren(facts([["Type", q.type], ["State", q.state], ["Node", q.node],
      ["Features", [q.durable ? "durable " : "", q.auto_delete ? "auto-delete " : "", q.exclusive ? "exclusive " : ""].join("") || "—"],
      ["Arguments", JSON.stringify(q.arguments || {})], ["Policy", q.policy || ""],
      ["Ready", h("span", { id: "queue-ready" }, fmtNum(q.messages_ready))], ["Unacked", fmtNum(q.messages_unacknowledged)],
      ["Total", h("span", { id: "queue-total" }, fmtNum(q.messages))], ["Ready bytes", fmtBytes(q.message_bytes_ready)],
      ["Consumers", fmtNum(q.consumers)]]));
    $("queue-consumers").replaceChildren(table([
      { label: "Channel", value: (c) => `${(c.channel_details || {}).connection_name || ""} (${(c.channel_details || {}).number ?? ""})` },
      { label: "Consumer tag", value: (c) => c.consumer_tag }, { label: "Ack required", value: (c) => String(c.ack_required) },
      { label: "Prefetch count", value: (c) => fmtNum(c.prefetch_count), num: true }, { label: "Active", value: (c) => String(c.active) },
      { label: "Activity status", value: (c) => c.activity_status || "" }], q.consumer_details || []));
    const bindings = await api("GET", path + "/bindings");
    $("queue-bindings").replaceChildren(bindingTable(vhost, bindings, "source"));
  }
})();
