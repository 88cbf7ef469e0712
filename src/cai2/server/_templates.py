"""Server-rendered pages of the review UI (Jinja2 with autoescaping: stored text shows inertly)."""

from __future__ import annotations

from jinja2 import DictLoader, Environment, select_autoescape

_BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }} · cai2 review</title>
<link rel="stylesheet" href="/ui/static/app.css">
<script src="/ui/static/app.js" defer></script>
</head><body>
<header>
  <strong>cai2 oversight</strong>
  {% if user %}
  <nav>
    <a href="/ui/" id="nav-queue">Queue</a>
    <a href="/ui/history">History</a>
    <a href="/ui/dashboard">Dashboard</a>
    {% if user.is_admin %}<a href="/ui/constitution">Constitution</a>{% endif %}
  </nav>
  <form method="post" action="/ui/logout" class="inline">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <span class="who">{{ user.username }} ({{ user.role }})</span>
    <button type="submit">Log out</button>
  </form>
  {% endif %}
</header>
<main>
{% if message %}
<p class="message {{ message_kind or 'info' }}" id="message">{{ message }}</p>
{% endif %}
{% block body %}{% endblock %}
</main>
<footer>Keys: <kbd>?</kbd> help · <kbd>g</kbd> queue</footer>
<div id="help" hidden>
  <h3>Keyboard shortcuts</h3>
  <ul>
    <li><kbd>a</kbd> approve the AI's decision</li>
    <li><kbd>o</kbd> write an override reason (then <kbd>Ctrl</kbd>+<kbd>Enter</kbd> to submit)</li>
    <li><kbd>s</kbd> skip</li>
    <li><kbd>j</kbd> / <kbd>k</kbd> next / previous item</li>
    <li><kbd>g</kbd> back to the queue · <kbd>?</kbd> this help</li>
  </ul>
</div>
</body></html>
"""

_LOGIN = """{% extends "base.html" %}{% block body %}
<h1>Reviewer login</h1>
<form method="post" action="/ui/login" id="login-form">
  <input type="hidden" name="csrf" value="{{ login_csrf }}">
  <label>Username <input name="username" id="username" autocomplete="username" required></label>
  <label>Password <input name="password" id="password" type="password"
    autocomplete="current-password" required></label>
  <button type="submit" id="login">Log in</button>
</form>
{% endblock %}"""

_QUEUE = """{% extends "base.html" %}{% block body %}
<h1>Review queue <small>run {{ run_id }}</small></h1>
{% if checkpoint %}
<section class="checkpoint" id="checkpoint">
  <h2>Checkpoint: auto-approval is paused</h2>
  <p>{{ checkpoint.reason }} (opened {{ checkpoint.created_at.strftime('%Y-%m-%d %H:%M:%S') }} UTC).
  Answers are held until every queued decision is reviewed and the checkpoint is cleared.</p>
  <form method="post" action="/ui/checkpoint/clear">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <input name="note" placeholder="note (optional)" aria-label="note">
    <button type="submit" id="clear-checkpoint" {% if entries %}disabled{% endif %}>
      Clear checkpoint</button>
  </form>
</section>
{% else %}
<p class="ok" id="auto-status">Auto-approval running: {{ since }} of {{ k }} answers released
since the last checkpoint.</p>
{% endif %}
<p>{{ entries|length }} decision(s) await review.</p>
<table id="queue">
<thead><tr><th>#</th><th>request</th><th>why</th><th>AI decision</th><th>queued</th></tr></thead>
<tbody>
{% for e in entries %}
<tr data-entry="{{ e.id }}">
  <td><a href="/ui/review/{{ e.id }}" class="entry-link">{{ e.id }}</a></td>
  <td class="prompt">{{ e.conversation[-1].content[:120] }}</td>
  <td>{{ e.reasons|join(', ') }}</td>
  <td>{{ verdict_word(e.ai_violation) }}</td>
  <td>{{ e.created_at.strftime('%H:%M:%S') }}</td>
</tr>
{% endfor %}
</tbody></table>
{% endblock %}"""

_REVIEW = """{% extends "base.html" %}{% block body %}
<h1>Decision {{ entry.id }} <small>{{ entry.item_id }}</small></h1>
<p>Sent to people because: <strong id="reasons">{{ entry.reasons|join(', ') }}</strong>
 (probability {{ '%.3f'|format(entry.inclusion_probability) }}).
 Status: <strong id="status">{{ entry.status.value }}</strong>
 {% if entry.reviewer %}by {{ entry.reviewer }}{% endif %}</p>
<div class="side-by-side">
<section class="conversation" id="conversation">
  <h2>Conversation</h2>
  {% for m in entry.conversation %}
  <div class="turn {{ m.role }}"><span class="role">{{ m.role }}</span>
  <pre>{{ m.content }}</pre></div>
  {% endfor %}
  <div class="turn assistant reply"><span class="role">reply under review</span>
  <pre id="reply">{{ entry.response }}</pre></div>
  {% if record %}<p>Sent to the client: <strong id="action">{{ record.action }}</strong>;
  risk {{ record.risk }}; constitution {{ record.constitution }};
  layers {{ record.layers|join(', ') }}.</p>{% endif %}
</section>
<section class="chain" id="chain">
  <h2>Verdict chain</h2>
  {% if not entry.chain %}<p>No AI judge looked at it (low-risk fast path).</p>{% endif %}
  <ol>
  {% for link in entry.chain %}
  <li><strong>{{ link.level_name }}</strong> ({{ link.judge }}):
    P(violation) = {% if link.p_violation is not none %}{{ '%.3f'|format(link.p_violation) }}
    {%- else %}could not judge{% endif %}
    → {{ verdict_word(link.violation) }}{% if link.escalated %}, escalated{% endif %}
    <br><small>why it looked: {{ link.reasons|join(', ') }}; {{ link.rationale }}</small></li>
  {% endfor %}
  </ol>
  <p>AI decision: <strong id="ai-decision">{{ verdict_word(entry.ai_violation) }}</strong></p>
  {% if entry.status.value == 'pending' %}
  <form method="post" action="/ui/review/{{ entry.id }}" id="approve-form">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <input type="hidden" name="decision" value="approve">
    <button type="submit" id="approve" {% if entry.ai_violation is none %}disabled{% endif %}>
      Approve (a)</button>
  </form>
  <form method="post" action="/ui/review/{{ entry.id }}" id="override-form">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <input type="hidden" name="decision" value="override">
    <label>Reason <textarea name="reason" id="reason" required></textarea></label>
    <label>The reply is
    <select name="violation" id="violation">
      <option value="">the opposite of the AI's decision</option>
      <option value="yes">a violation</option>
      <option value="no">not a violation</option>
    </select></label>
    <button type="submit" id="override">Override (o, Ctrl+Enter)</button>
  </form>
  <form method="post" action="/ui/review/{{ entry.id }}" id="skip-form">
    <input type="hidden" name="csrf" value="{{ csrf }}">
    <input type="hidden" name="decision" value="skip">
    <button type="submit" id="skip">Skip (s)</button>
  </form>
  {% else %}
  <p>Reviewer's decision: {{ verdict_word(entry.human_violation) }}
  {% if entry.reason %}— “{{ entry.reason }}”{% endif %}</p>
  {% endif %}
</section>
</div>
<nav class="pager">
{% if previous_id %}
<a href="/ui/review/{{ previous_id }}" id="previous">← previous (k)</a>
{% endif %}
{% if next_id %}<a href="/ui/review/{{ next_id }}" id="next">next (j) →</a>{% endif %}
</nav>
{% endblock %}"""

_HISTORY = """{% extends "base.html" %}{% block body %}
<h1>Reviewed decisions</h1>
<table id="history"><thead><tr><th>#</th><th>request</th><th>status</th><th>AI</th>
<th>reviewer</th><th>reason</th></tr></thead><tbody>
{% for e in entries %}
<tr><td><a href="/ui/review/{{ e.id }}">{{ e.id }}</a></td>
<td class="prompt">{{ e.conversation[-1].content[:100] }}</td><td>{{ e.status.value }}</td>
<td>{{ verdict_word(e.ai_violation) }}</td><td>{{ e.reviewer }}</td>
<td>{{ e.reason or '' }}</td></tr>
{% endfor %}
</tbody></table>
{% endblock %}"""

_DASHBOARD = """{% extends "base.html" %}{% block body %}
<h1>Dashboard</h1>
<table id="totals"><tbody>
{% for name, value in totals %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>{% endfor %}
</tbody></table>
<img src="/ui/dashboard.svg" alt="rates and latency over time" id="plot" width="900">
{% endblock %}"""

_CONSTITUTION = """{% extends "base.html" %}{% block body %}
<h1>Constitution</h1>
<p>In force: <strong id="current-version">version {{ versions[0].version }}</strong>
({{ versions[0].name }}, by {{ versions[0].author }}: {{ versions[0].note }}).</p>
<form method="post" action="/ui/constitution" id="constitution-form">
  <input type="hidden" name="csrf" value="{{ csrf }}">
  <label>YAML <textarea name="yaml_text" id="yaml" rows="18">{{ draft }}</textarea></label>
  <label>Why this change <input name="note" id="note" required></label>
  <button type="submit" id="save-constitution">
    Save as version {{ versions[0].version + 1 }}</button>
</form>
<h2>Versions</h2>
<table id="versions"><thead><tr><th>version</th><th>name</th><th>author</th><th>note</th>
<th>created</th></tr></thead><tbody>
{% for v in versions %}<tr><td>{{ v.version }}</td><td>{{ v.name }}</td><td>{{ v.author }}</td>
<td>{{ v.note }}</td><td>{{ v.created_at.strftime('%Y-%m-%d %H:%M:%S') }}</td></tr>{% endfor %}
</tbody></table>
{% endblock %}"""

_ERROR = """{% extends "base.html" %}{% block body %}
<h1>{{ title }}</h1><p id="error">{{ detail }}</p><p><a href="/ui/">Back to the queue</a></p>
{% endblock %}"""

APP_JS = """// Keyboard shortcuts of the review UI.
document.addEventListener('keydown', function (event) {
  var target = event.target;
  var typing = target && (target.tagName === 'TEXTAREA' || target.tagName === 'INPUT' ||
    target.tagName === 'SELECT');
  if (typing) {
    if (event.key === 'Enter' && event.ctrlKey && target.id === 'reason') {
      event.preventDefault();
      document.getElementById('override-form').requestSubmit();
    }
    if (event.key === 'Escape') { target.blur(); }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) { return; }
  var click = function (id) {
    var el = document.getElementById(id);
    if (el && !el.disabled) { el.click(); }
  };
  if (event.key === 'a') { click('approve'); }
  else if (event.key === 's') { click('skip'); }
  else if (event.key === 'o') {
    var reason = document.getElementById('reason');
    if (reason) { event.preventDefault(); reason.focus(); }
  }
  else if (event.key === 'j') { click('next'); }
  else if (event.key === 'k') { click('previous'); }
  else if (event.key === 'g') { window.location.href = '/ui/'; }
  else if (event.key === '?') {
    var help = document.getElementById('help'); help.hidden = !help.hidden;
  }
});
"""

APP_CSS = """body { font-family: system-ui, sans-serif; margin: 0; color: #1d1d1f; }
header { display: flex; gap: 1.5em; align-items: center; padding: .6em 1em; background: #24364b;
  color: #fff; }
header a { color: #fff; margin-right: 1em; } header .inline { margin-left: auto; }
main { padding: 1em 1.5em; } footer { padding: .5em 1.5em; color: #666; font-size: .85em; }
table { border-collapse: collapse; } td, th { border-bottom: 1px solid #ddd; padding: .3em .6em;
  text-align: left; vertical-align: top; }
.side-by-side { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5em; }
.turn { margin: .4em 0; padding: .4em; border-left: 4px solid #9ab; background: #f6f8fa; }
.turn.user { border-color: #4a7; } .turn.reply { border-color: #c63; }
.role { font-size: .75em; text-transform: uppercase; color: #555; }
pre { white-space: pre-wrap; word-break: break-word; margin: .2em 0; font-family: inherit; }
.checkpoint { border: 2px solid #c63; padding: .5em 1em; background: #fff4ec; }
.message.error { color: #a00; } .message.info { color: #235; } .ok { color: #265; }
form { margin: .5em 0; } label { display: block; margin: .4em 0; }
textarea { width: 100%; min-height: 4em; font-family: monospace; }
#help { position: fixed; right: 1em; bottom: 2.5em; background: #fff; border: 1px solid #999;
  padding: .5em 1em; }
kbd { border: 1px solid #999; border-radius: 3px; padding: 0 .3em; font-size: .9em; }
"""


def verdict_word(violation: bool | None) -> str:
    """How a decision reads in the UI."""
    if violation is None:
        return "could not judge"
    return "violation" if violation else "no violation"


def environment() -> Environment:
    """The Jinja2 environment of the pages (autoescaping on for every template)."""
    env = Environment(
        loader=DictLoader(
            {
                "base.html": _BASE,
                "login.html": _LOGIN,
                "queue.html": _QUEUE,
                "review.html": _REVIEW,
                "history.html": _HISTORY,
                "dashboard.html": _DASHBOARD,
                "constitution.html": _CONSTITUTION,
                "error.html": _ERROR,
            }
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.globals["verdict_word"] = verdict_word
    return env
