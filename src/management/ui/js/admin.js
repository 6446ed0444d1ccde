/* Warren management UI: the Admin tab, with RabbitMQ's sections: users
   (and their permissions), virtual hosts, policies. Everything goes
   through RabbitMQ's endpoints: /api/users, /api/vhosts,
   /api/permissions, /api/policies. */
"use strict";

(() => {
  const { h, $, enc, table, form, field, select, textarea, jsonField, fmtNum, showError, notice, api } = W;

  const sections = [["users", "Users"], ["vhosts", "Virtual Hosts"], ["policies", "Policies"]];

  function remove(what, path, section) {
    return h("button", { type: "button", class: "danger", onclick: async () => {
      if (!window.confirm(`Delete ${what}?`)) return;
      try {
        await api("DELETE", path);
        notice(`Deleted ${what}`);
        await section.update();
      } catch (e) { showError(e); }
    } }, "Delete");
  }

  /** Shows what `load` draws in `#id`, or the API's error in its place
      (so one missing endpoint does not hide the rest of the page). */
  async function fill(id, load) {
    const box = $(id);
    if (!box) return;
    try { box.replaceChildren(await load()); } catch (e) {
      box.replaceChildren(h("p", { class: "error" }, e.describe ? e.describe() : String(e)));
    }
  }

  const users = {
    render(main) {
      const [title, f] = form("add-user", "Add a user", [
        field("Username", "name", { required: true }), field("Password", "password", { type: "password" }),
        field("Tags", "tags", { placeholder: "administrator, monitoring, policymaker, management" }),
      ], "Add user", async (f) => {
        const e = f.elements;
        await api("PUT", "/users/" + enc(e.name.value), { password: e.password.value, tags: e.tags.value.split(",").map((t) => t.trim()).filter((t) => t).join(",") });
        notice(`User ${e.name.value} added`);
        f.reset();
        await this.update();
      });
      const [ptitle, pf] = form("set-permission", "Set permission", [
        field("User", "user", { required: true }), field("Virtual host", "vhost", { value: "/" }),
        field("Configure regexp", "configure", { value: ".*" }), field("Write regexp", "write", { value: ".*" }),
        field("Read regexp", "read", { value: ".*" }),
      ], "Set permission", async (f) => {
        const e = f.elements;
        await api("PUT", `/permissions/${enc(e.vhost.value)}/${enc(e.user.value)}`, { configure: e.configure.value, write: e.write.value, read: e.read.value });
        notice("Permission set");
        await this.update();
      });
      main.append(h("h2", {}, "All users"), h("div", { id: "users-list" }), title, f,
        h("h2", {}, "Permissions"), h("div", { id: "permissions-list" }), ptitle, pf);
    },
    async update() {
      await fill("users-list", async () => table([
        { label: "Name", value: (u) => u.name }, { label: "Tags", value: (u) => [].concat(u.tags || []).join(", ") },
        { label: "Has password", value: (u) => (u.password_hash ? "●" : "○") },
        { label: "", value: (u) => remove(`user ${u.name}`, "/users/" + enc(u.name), users) }], await api("GET", "/users"), { id: "users-table" }));
      await fill("permissions-list", async () => table([
        { label: "User", value: (p) => p.user }, { label: "Virtual host", value: (p) => p.vhost },
        { label: "Configure", value: (p) => p.configure }, { label: "Write", value: (p) => p.write }, { label: "Read", value: (p) => p.read },
        { label: "", value: (p) => remove(`the permissions of ${p.user} in ${p.vhost}`, `/permissions/${enc(p.vhost)}/${enc(p.user)}`, users) }],
      await api("GET", "/permissions")));
    },
  };

  const vhosts = {
    render(main) {
      const [title, f] = form("add-vhost", "Add a new virtual host", [
        field("Name", "name", { required: true }), field("Description", "description"), field("Tags", "tags"),
      ], "Add virtual host", async (f) => {
        const e = f.elements;
        await api("PUT", "/vhosts/" + enc(e.name.value), { description: e.description.value, tags: e.tags.value });
        notice(`Virtual host ${e.name.value} added`);
        f.reset();
        await this.update();
      });
      main.append(h("h2", {}, "All virtual hosts"), h("div", { id: "vhosts-list" }), title, f);
    },
    async update() {
      await fill("vhosts-list", async () => table([
        { label: "Name", value: (v) => v.name }, { label: "Description", value: (v) => v.description || "" },
        { label: "Tags", value: (v) => [].concat(v.tags || []).join(", ") },
        { label: "Ready", value: (v) => fmtNum(v.messages_ready), num: true }, { label: "Unacked", value: (v) => fmtNum(v.messages_unacknowledged), num: true },
        { label: "Total", value: (v) => fmtNum(v.messages), num: true },
        { label: "", value: (v) => remove(`virtual host ${v.name}`, "/vhosts/" + enc(v.name), vhosts) }], await api("GET", "/vhosts")));
    },
  };

  const policies = {
    render(main) {
      const [title, f] = form("add-policy", "Add / update a policy", [
        field("Virtual host", "vhost", { value: "/" }), field("Name", "name", { required: true }), field("Pattern", "pattern", { required: true, placeholder: "^amq." }),
        select("Apply to", "apply-to", [["all", "Exchanges and queues"], ["exchanges", "Exchanges"], ["queues", "Queues"]], "all"),
        field("Priority", "priority", { type: "number", value: 0 }),
        textarea("Definition (JSON)", "definition", '{"max-length": 1000, "dead-letter-exchange": "dlx"}'),
      ], "Add / update policy", async (f) => {
        const e = f.elements;
        await api("PUT", `/policies/${enc(e.vhost.value)}/${enc(e.name.value)}`, { pattern: e.pattern.value, "apply-to": e["apply-to"].value,
          priority: Number(e.priority.value || 0), definition: jsonField(f, "definition") });
        notice(`Policy ${e.name.value} set`);
        await this.update();
      });
      main.append(h("h2", {}, "User policies"), h("div", { id: "policies-list" }), title, f);
    },
    async update() {
      await fill("policies-list", async () => table([
        { label: "Virtual host", value: (p) => p.vhost }, { label: "Name", value: (p) => p.name }, { label: "Pattern", value: (p) => p.pattern },
        { label: "Apply to", value: (p) => p["apply-to"] }, { label: "Definition", value: (p) => JSON.stringify(p.definition) },
        { label: "Priority", value: (p) => fmtNum(p.priority), num: true },
        { label: "", value: (p) => remove(`policy ${p.name}`, `/policies/${enc(p.vhost)}/${enc(p.name)}`, policies) }], await api("GET", "/policies")));
    },
  };

  const bySection = { users, vhosts, policies };

  W.pages.admin = {
    render(r) {
      const name = bySection[r.args[0]] ? r.args[0] : "users";
      r.main.append(h("h1", {}, "Admin"),
        h("div", { class: "controls" }, sections.map(([k, label]) => k === name ? h("b", {}, label) : h("a", { href: "#/admin/" + k }, label))));
      bySection[name].render(r.main);
    },
    update(r) {
      return bySection[bySection[r.args[0]] ? r.args[0] : "users"].update();
    },
  };
})();
