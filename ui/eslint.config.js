// Lints the UI's TypeScript (run by `npm run lint`, part of scripts/test.sh): the recommended
// rules of ESLint and typescript-eslint; the type checker itself runs as `npm run check`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
);
