import asyncpg
async def test_db(database_url):
    conn = await asyncpg.connect(database_url)
    print(await conn.fetchval("select version()"))
    await conn.close()
