// The one Node built-in the tests use (reading a fixture written by the Rust side), declared here
// rather than pulling in all of @types/node, whose globals clash with the DOM types of the app.
declare module 'node:fs' {
  export function readFileSync(path: URL | string): Uint8Array;
}
