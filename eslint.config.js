import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'data/**', 'bench/results/**', 'bench/builds/**', 'node_modules/**'] }),
  {
    files: ['migrations/**/*.ts'],
    rules: {
      // Migrations are frozen in time and see the database as it was: Kysely<any> by design.
      '@typescript-eslint/no-explicit-any': 'off'
    }
  }
]
