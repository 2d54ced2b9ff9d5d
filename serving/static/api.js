// The JSON API with the key of the session; errors carry the API's message.
export function key() {
  return sessionStorage.getItem("cg-key") || "";
}

export function setKey(value) {
  if (value) sessionStorage.setItem("cg-key", value);
  else sessionStorage.removeItem("cg-key");
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(method, path, body) {
  const headers = { Authorization: "Bearer " + key() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!resp.ok) {
    let message = resp.statusText;
    try {
      const err = await resp.json();
      message = err.error ? err.error.message : message;
    } catch (e) { /* not JSON */ }
    throw new ApiError(resp.status, message);
  }
  return resp;
}

export async function get(path) {
  return (await call("GET", path)).json();
}

export async function post(path, body) {
  return (await call("POST", path, body)).json();
}

// fetch a file with the key and hand it to the browser as a download
export async function download(path) {
  const resp = await call("GET", path);
  const blob = await resp.blob();
  const cd = resp.headers.get("Content-Disposition") || "";
  const m = /filename="([^"]+)"/.exec(cd);
  const name = m ? m[1] : path.split("/").pop().split("?")[0];
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  return name;
}
