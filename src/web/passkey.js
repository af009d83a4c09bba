// The passkey pages' one script: WebAuthn in the browser, everything decided by the server.
"use strict";

const b64 = {
  decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    let raw = "";
    for (const byte of new Uint8Array(buffer)) raw += String.fromCharCode(byte);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.detail || `countersign answered ${response.status}`);
  return answer;
}

async function enroll(base) {
  const { publicKey } = await post(`${base}/options`);
  publicKey.challenge = b64.decode(publicKey.challenge);
  publicKey.user.id = b64.decode(publicKey.user.id);
  for (const c of publicKey.excludeCredentials ?? []) c.id = b64.decode(c.id);
  const credential = await navigator.credentials.create({ publicKey });
  await post(`${base}/finish`, {
    id: credential.id,
    rawId: b64.encode(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: b64.encode(credential.response.attestationObject),
      clientDataJSON: b64.encode(credential.response.clientDataJSON),
    },
    extensions: credential.getClientExtensionResults(),
  });
  return "Your passkey is registered. You can close this page.";
}

async function vote(base) {
  const { publicKey } = await post(`${base}/options`);
  publicKey.challenge = b64.decode(publicKey.challenge);
  for (const c of publicKey.allowCredentials ?? []) c.id = b64.decode(c.id);
  const assertion = await navigator.credentials.get({ publicKey });
  const answer = await post(`${base}/finish`, {
    id: assertion.id,
    rawId: b64.encode(assertion.rawId),
    type: assertion.type,
    response: {
      authenticatorData: b64.encode(assertion.response.authenticatorData),
      clientDataJSON: b64.encode(assertion.response.clientDataJSON),
      signature: b64.encode(assertion.response.signature),
      userHandle: assertion.response.userHandle ? b64.encode(assertion.response.userHandle) : null,
    },
    extensions: assertion.getClientExtensionResults(),
  });
  return answer.outcome;
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("go");
  const outcome = document.getElementById("outcome");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    outcome.textContent = "Waiting for your passkey…";
    const base = location.pathname.replace(/\/$/, "");
    try {
      outcome.textContent = await (button.dataset.kind === "enroll" ? enroll(base) : vote(base));
    } catch (error) {
      outcome.textContent = `Nothing was recorded: ${error.message}`;
      button.disabled = false;
    }
  });
});
