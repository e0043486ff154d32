"""The login page (field names and button id as Keycloak's, so browser tests read alike)."""

from __future__ import annotations

import html

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to {realm}</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f4f6; display: flex;
       justify-content: center; padding-top: 10vh; margin: 0; }}
form {{ background: white; padding: 2rem 2.5rem; border-radius: 8px; width: 320px;
       box-shadow: 0 2px 12px rgba(0,0,0,.08); }}
h1 {{ font-size: 1.3rem; margin: 0 0 .3rem; }} p.note {{ color: #6b7280; font-size: .8rem; }}
label {{ display: block; margin-top: 1rem; font-size: .9rem; }}
input[type=text], input[type=password] {{ width: 100%; padding: .5rem; margin-top: .3rem;
       box-sizing: border-box; border: 1px solid #d1d5db; border-radius: 4px; }}
button {{ margin-top: 1.5rem; width: 100%; padding: .6rem; background: #2563eb; color: white;
       border: 0; border-radius: 4px; font-size: 1rem; cursor: pointer; }}
.error {{ color: #b91c1c; background: #fee2e2; padding: .5rem; border-radius: 4px; }}
</style></head>
<body><form method="post" action="{action}">
<h1>Sign in to {realm}</h1>
<p class="note">tweetpipe dev issuer — single-machine profile only</p>
{error}
<label for="username">Username</label>
<input id="username" name="username" type="text" autofocus autocomplete="username"
       value="{username}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
{hidden}
<button id="kc-login" name="login" type="submit">Sign In</button>
</form></body></html>
"""

MESSAGE = """<!doctype html><html lang="en">
<head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: system-ui, sans-serif; padding: 10vh 2rem; text-align: center">
<h1>{title}</h1><p>{text}</p></body></html>"""


def login_page(
    realm: str, action: str, params: dict[str, str], error: str = "", username: str = ""
) -> str:
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k not in ("username", "password", "login")
    )
    return PAGE.format(
        realm=html.escape(realm),
        action=html.escape(action),
        hidden=hidden,
        username=html.escape(username),
        error=f'<p class="error" id="input-error">{html.escape(error)}</p>' if error else "",
    )


def message_page(title: str, text: str) -> str:
    return MESSAGE.format(title=html.escape(title), text=html.escape(text))
