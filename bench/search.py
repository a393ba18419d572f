"""History search at a million rows, on PostgreSQL: load, then time what GET /api/history/?search= runs.

    .venv/bin/python bench/search.py [--rows 1000000] [--mine 100000] [--repeat 3] [--keep] [--trigram]

Drops and recreates the database `onlineocr_bench` (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/onlineocr_bench), migrates it, and loads --rows records
with COPY: --mine of them belong to the searching user, the rest to 99 others, interleaved
in time as real uploads are. Each record's text is 50-500 characters of English words and
Chinese words (Zipf-distributed, so some words are everywhere and most are rare), with an
invoice number in some, and its lines as JSON. The indexes are built after the load, then
VACUUM ANALYZE.

Then, for 51 searches (common and rare words, Chinese substrings of 1-4 characters, mixed,
several words, file names, no match, with an ordering or filters), it times the two queries
the history API runs for a search: the matches' ids (at most 1,000, also the count) and
the page of 20, most relevant first. Both as the list view runs them without HTTP (filter
backends, paginator) and as the whole GET in process. Prints each search's count and times
(median of --repeat runs), p50/p95/max, and EXPLAIN (ANALYZE, BUFFERS) of both queries for
one term (--explain).
With --trigram, it also builds a pg_trgm index on the text (the usual alternative for
Chinese) and times LIKE '%term%' beside the bigram full-text search, then drops it.
Not a test: it prints figures.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from multiprocessing import Process
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/onlineocr_bench")
os.environ["DATABASE_URL"] = BENCH_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onlineocr.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")

import django  # noqa: E402
import psycopg  # noqa: E402

SEARCHER = "searcher"
OTHERS = 99

# ---- text ---------------------------------------------------------------------------------

ENGLISH = """the of and to in for is on that by this with you it not or be are from at as your all
have new more an was we will home can us about if page my has search free but our one other do no
information time they site he up may what which their news out use any there see only so his when
contact here business who web also now help get view online first am been would how were me services
some these click its like service than find price date back top people had list name just over
state year day into email two health world next used go work last most products music buy data make
them should product system post her city add policy number such please available copyright support
message after best software then jan good video well where info rights public books high school
through each links she review years order very privacy book items company read group need many user
said does set under general research university january mail full map reviews program life know
games way days management part could great united hotel real item international center ebay must
store travel comments made development report off member details line terms before hotels did send
right type because local those using results office education national car design take posted
internet address community within states area want phone dvd shipping reserved subject between forum
family long based code show even black check special prices website index being women much sign file
link open today technology south case project same pages uk version section own found sports house
related security both county american photo game members power while care network down computer
systems three total place end following download him without per access think north resources
current posts big media law control water history pictures size art personal since including guide
shop directory board location change white text small rating rate government children during usa
return students shopping account times sites level digital profile previous form events love old john
main call hours image department title description non insurance another why shall property class
still money quality every listing content country private little visit save tools low reply customer
december compare movies include college value article york man card jobs provide food source author
different press learn sale around print course job canada process teen room stock training too credit
point join science men categories advanced west sales look english left team estate box conditions
select windows photos gay thread week category note live large gallery table register however june
october november market library really action start series model features air industry plan human
provided yes required second hot accessories cost movie forums march la september better say
questions july yahoo going medical test friend come dec server study application cart staff articles
san feedback again play looking issues april never users complete street topic comment financial
things working against standard tax person below mobile less got blog party payment equipment login
student let programs offers legal above recent park stores side act problem red give memory
performance social august quote language story sell options experience rates create key body young
america important field few east paper single age activities club example girls additional password
latest something road gift question changes night hard texas oct pay four poker status browse issue
range building seller court february always result audio light write war nov offer blue groups easy
given files event release analysis request fax china making picture needs possible might professional
yet month major star areas future space committee hand sun cards problems london washington meeting
become interest id child keep enter california share similar garden schools million added reference
companies listed baby learning energy run delivery net popular term film stories put computers journal
reports co try welcome central images president notice god original head radio until cell color self
council away includes track australia discussion archive once others entertainment agreement format
least society months log safety friends sure faq trade edition cars messages marketing tell further
updated association able having provides david fun already green studies close common drive specific
several gold feb living sep collection called short arts lot ask display limited powered solutions
means director daily beach past natural whether due et electronics five upon period planning database
says official weather mar land average done technical window france pro region island record direct
microsoft conference environment records st district calendar costs style url front statement update
parts aug ever downloads early miles sound resource present applications either ago document word
works material bill apr written talk federal hosting rules final adult tickets thing centre requirements
via cheap kids finance true minutes else mark third rock gifts europe reading topics bad individual
tips plus auto cover usually edit together videos percent fast function fact unit getting global tech
meet far economic en player projects lyrics often subscribe submit germany amount watch included feel
though bank risk thanks everything deals various words linux jul production commercial james weight
town heart advertising received choose treatment newsletter archives points knowledge magazine error
camera jun girl currently construction toys registered clear golf receive domain methods chapter
makes protection policies loan wide beauty manager india position taken sort listings models michael
known half cases step engineering florida simple quick none wireless license paul friday lake whole
annual published later basic sony shows corporate google church method purchase customers active
response practice hardware figure materials fire holiday chat enough designed along among death
writing speed html countries loss face brand discount higher effects created remember standards oil
bit yellow political increase advertise kingdom base near environmental thought stuff french storage
oh japan doing loans shoes entry stay nature orders availability africa summary turn mean growth notes
agency king monday european activity copy although drug pics western income force cash employment
overall bay river commission ad package contents seen players engine port album regional stop supplies
started administration bar institute views plans double dog build screen exchange types soon sponsored
lines electronic continue across benefits needed season apply someone held ny anything printer
condition effective believe organization effect asked eur mind sunday selection casino pdf lost tour
menu volume cross anyone mortgage hope silver corporation wish inside solution mature role rather
weeks addition came supply nothing certain usr executive running lower necessary union jewelry
according dc clothing mon com particular fine names robert homepage hour gas skills six bush islands
advice career military rental decision leave british teens pre huge sat woman facilities zip bid kind
sellers middle move cable opportunities taking values division coming tuesday object lesbian
appropriate machine logo length actually nice score statistics client ok returns capital follow
sample investment sent shown saturday christmas england culture band flash ms lead george choice went
starting registration fri thursday courses consumer hi airport foreign artist outside furniture levels
channel letter mode phones ideas wednesday structure fund summer allow degree contract button releases
wed homes super male matter custom virginia almost took located multiple asian distribution editor
inn industrial cause potential song cnet ltd los hp focus late fall featured idea rooms female
responsible inc communications win associated thomas primary cancer numbers reason tool browser spring
foundation answer voice eg friendly schedule documents communication purpose feature bed comes police
everyone independent ip approach cameras brown physical operating hill maps medicine deal hold ratings
chicago forms glass happy tue smith wanted developed thank safe unique survey prior telephone sport
ready feed animal sources mexico population pa regular secure navigation operations therefore simply
evidence station christian round paypal favorite understand option master valley recently probably
thu rentals sea built publications blood cut worldwide improve connection publisher hall larger
anti networks earth parents nokia impact transfer introduction kitchen strong tel carolina wedding
properties hospital ground overview ship accommodation owners disease tx excellent paid italy perfect
hair opportunity kit classic basis command cities william express anal award distance tree peter
assessment ensure thus wall ie involved el extra especially interface pussy partners budget rated
guides success maximum ma operation existing quite selected boy amazon patients restaurants beautiful
warning wine locations horse vote forward flowers stars significant lists technologies owner retail
animals useful directly manufacturer ways est son providing rule mac housing takes iii gmt bring
catalog searches max trying mother authority considered told xml traffic programme joined input
strategy feet agent valid bin modern senior ireland sexy teaching door grand testing trial charge
units instead canadian cool normal wrote enterprise ships entire educational md leading metal positive
fl fitness chinese opinion mb asia football abstract uses output funds mr greater likely develop
employees artists alternative processing responsibility resolution java guest seems publication pass
relations trust van contains session multi photography republic fees components vacation century
academic assistance completed skin graphics indian prev ads mary il expected ring grade dating
pacific mountain organizations pop filter mailing vehicle longer consider int northern behind panel
floor german buying match proposed default require iraq boys outdoor deep morning otherwise allows rest
protein plant reported hit transportation mm pool mini politics partner disclaimer authors boards
faculty parties fish membership mission eye string sense modified pack released stage internal goods
recommended born unless richard detailed japanese race approved background target except character
usb maintenance ability maybe functions ed moving brands places php pretty trademarks phentermine
spain southern yourself etc winter rape battery youth pressure submitted boston incest debt keywords
medium television interested core break purposes throughout sets dance wood msn itself defined papers
playing awards fee studio reader virtual device established answers rent las remote dark programming
external apple le regarding instructions min offered theory enjoy remove aid surface minimum visual
host variety teachers isbn martin manual block subjects agents increased repair fair civil steel
understanding songs fixed wrong beginning hands associates finally az updates desktop classes paris
ohio gets sector capacity requires jersey un fat fully father electric saw instruments quotes officer
driver businesses dead respect unknown specified restaurant mike trip pst worth mi procedures poor
teacher xxx eyes relationship workers farm fucking georgia peace traditional campus tom showing
creative coast benefit progress funding devices lord grant sub agree fiction hear sometimes watches
careers beyond goes families led museum themselves fan transport interesting blogs wife evaluation
accepted former implementation ten hits zone complex th cat galleries references die presented jack
flat flow agencies literature respective parent spanish michigan columbia setting dr scale stand
economy highest helpful monthly critical frame musical definition secretary angeles networking path
australian employee chief gives kb bottom magazines packages detail francisco laws changed pet heard
begin individuals colorado royal clean switch russian largest african guy titles relevant guidelines
justice connect bible dev cup basket applied weekly vol installation described demand pp suite
vegas na square chris attention advance skip diet army auction gear lee os difference allowed correct
charles nation selling lots piece sheet firm seven older illinois regulations elements species jump
cells module resort facility random pricing dvds certificate minister motion looks fashion directions
visitors documentation monitor trading forest calls whose coverage couple giving chance vision ball
ending clients actions listen discuss accept automotive naked goal successful sold wind communities
clinical situation sciences markets lowest highly publishing appear emergency developing lives
currency leather determine milf temperature palm announcements patient actual historical stone bob
commerce ringtones perhaps persons difficult scientific satellite fit tests village accounts
amateur ex met pain xbox particularly factors coffee www settings cum buyer cultural steve easily oral
ford poster edge functional root au fi closed holidays ice pink zealand balance monitoring graduate
replies shot nc architecture initial label thinking scott llc sec recommend canon hardcore league
waste minute bus provider optional dictionary cold accounting manufacturing sections chair fishing
effort phase fields bag fantasy po letters motor va professor context install shirt apparel generally
continued foot mass crime count breast techniques ibm rd johnson sc quickly dollars websites
religion claim driving permission surgery patch heat wild measures generation kansas miss chemical
doctor task reduce brought himself nor component enable exercise bug santa mid guarantee leader
diamond israel se processes soft servers alone meetings seconds jones arizona keyword interests
flight congress fuel username walk fuck produced italian paperback classifieds wait supported pocket
saint rose freedom argument competition creating jim drugs joint premium providers fresh characters
attorney upgrade di factor growing thousands km stream apartments pick hearing eastern auctions
therapy entries dates generated signed upper administrative serious prime samsung limit began louis
steps errors shops bondage del efforts informed ga ac thoughts creek ft worked quantity urban
practices sorted reporting essential myself tours platform load affiliate labor immediately admin
nursing defense machines designated tags heavy covered recovery joe guys integrated configuration
merchant comprehensive expert universal protect drop solid cds presentation languages became orange
compliance vehicles prevent theme rich im campaign marine improvement vs guitar finding pennsylvania
examples ipod saying spirit ar claims porno challenge motorola acceptance strategies mo seem affairs
touch intended towards sa goals hire election suggest branch charges serve affiliates reasons magic
mount smart talking gave ones latin multimedia xp tits avoid certified manage corner rank computing
oregon element birth virus abuse interactive requests separate quarter procedure leadership tables
define racing religious facts breakfast kong column plants faith chain developer identify avenue
missing died approximately domestic sitemap recommendations moved houston reach comparison mental
viewed moment extended sequence inch attack sorry centers opening damage lab reserve recipes cvs gamma
plastic produce snow placed truth counter failure follows eu weekend dollar camp ontario automatically
des minnesota films bridge native fill williams movement printing baseball owned approval draft chart
played contacts cc jesus readers clubs lcd wa jackson equal adventure matching offering shirts profit
leaders posters institutions assistant variable ave dj advertisement expect parking headlines yesterday
compared determined wholesale workshop russia gone codes kinds extension seattle statements golden
completely teams fort cm wi lighting senate forces funny brother gene turned portable tried electrical
applicable disc returned pattern ct boat named theatre laser earlier manufacturers sponsor classical icon
warranty dedicated indiana direction harry basketball objects ends delete evening assembly nuclear
taxes mouse signal criminal issued brain sexual wisconsin powerful dream obtained false da cast flower
felt personnel passed supplied identified falls pic soul aids opinions promote stated stats hawaii
professionals appears carry flag decided nj covers hr em advantage hello designs maintain tourism
priority newsletters adults clips savings iv graphic atom payments rw estimated binding brief ended
winning eight anonymous iron straight script served wants miscellaneous prepared void dining alert
integration atlanta dakota tag interview mix framework disk installed queen vhs credits clearly fix
handle sweet desk criteria pubmed dave massachusetts diego hong vice associate ne truck behavior
enlarge ray frequently revenue measure changing votes du duty looked discussions bear gain festival
laboratory ocean flights experts signs lack depth iowa whatever logged laptop vintage train exactly
dry explore maryland spa concept nearly eligible checkout reality forgot handling origin knew gaming
feeds billion destination scotland faster intelligence dallas bought con ups nations route followed
specifications broken tripadvisor frank alaska zoom blow battle residential anime speak decisions
industries protocol query clip partnership editorial nt expression es equity provisions speech wire
principles suggestions rural shared sounds replacement tape strategic judge spam economics acid bytes
cent forced compatible fight apartment height null zero speaker filed gb netherlands obtain bc
consulting recreation offices designer remain managed pr failed marriage roll korea banks fr
participants secret bath aa kelly leads negative austin favorites toronto theater springs missouri
andrew var perform healthy translation estimates font assets injury mt joseph ministry drivers lawyer
figures married protected proposal sharing philadelphia portal waiting birthday beta fail gratis
banking officials brian toward won slightly assist conduct contained lingerie legislation calling
parameters jazz serving bags profiles miami comics matters houses doc postal relationships tennessee
wear controls breaking combined ultimate wales representative frequency introduced minor finish
departments residents noted displayed mom reduced physics rare spent performed extreme samples davis
daniel bars reviewed row oz forecast removed helps singles administrator cycle amounts contain
accuracy dual rise usd sleep mg bird pharmacy brazil creation static scene hunter addresses lady
crystal famous writer chairman violence fans oklahoma speakers drink academy dynamic gender eat
permanent agriculture dell cleaning constitutes portfolio practical delivered collectibles
infrastructure exclusive seat concerns colour vendor originally intel utilities philosophy
regulation officers reduction aim bids referred supports nutrition recording regions junior toll les
cape ann rings meaning tip secondary wonderful mine ladies henry ticket announced guess agreed
prevention whom ski soccer math import posting presence instant mentioned automatic healthcare viewing
maintained ch increasing majority connected christ dan dogs sd directors aspects austria ahead moon
participation scheme utility preview fly manner matrix containing combination devel amendment despite
strength guaranteed turkey libraries proper distributed degrees singapore enterprises delta fear
seeking inches phoenix rs convention shares principal daughter standing voyeur comfort colors wars
cisco ordering kept alpha appeal cruise bonus certification previously hey bookmark buildings specials
beat disney household batteries adobe smoking bbc becomes drives arms alabama tea improved trees avg
achieve positions dress subscription dealer contemporary sky utah nearby rom carried happen exposure
panasonic hide permalink signature gambling refer miller provision outdoors clothes caused luxury
babes frames viagra certainly indeed newspaper toy circuit layer printed slow removal easier src
liability trademark hip printers faqs nine adding kentucky mostly eric spot taylor trackback prints
spend factory interior revised grow americans optical promotion relative amazing clock dot hiv
identity suites conversion feeling hidden reasonable victoria serial relief revision broadband
influence ratio pda importance rain onto dsl planet webmaster copies recipe zum permit seeing proof
dna diff tennis bass prescription bedroom empty instance hole pets ride licensed orlando specifically
tim bureau maine sql represent conservation pair ideal specs recorded don pieces finished parks dinner
lawyers sydney stress cream ss runs trends yeah discover sexo ap patterns boxes louisiana hills
javascript fourth nm advisor mn marketplace nd evil aware wilson shape evolution irish certificates
objectives stations suggested gps op remains acc greatest firms concerned euro operator structures
generic encyclopedia usage cap ink charts continuing mixed census interracial peak tn competitive exist
wheel transit dick suppliers salt compact poetry lights tracking angel bell keeping preparation
attempt receiving matches accordance width noise engines forget array discussed accurate stephen
elizabeth climate reservations pin playstation alcohol greek instruction managing annotation sister
raw differences walking explain smaller newest establish gnu happened expressed jeff extent sharp
lesbians ben lane paragraph kill mathematics aol compensation ce export managers aircraft modules
sweden conflict conducted versions employer occur percentage knows mississippi describe concern
backup requested citizens connecticut heritage personals immediate holding trouble spread coach
kevin agricultural expand supporting audience assigned jordan collections ages participate plug
specialist cook affect virgin experienced investigation raised hat institution directed dealers
searching sporting helping perl affected lib bike totally plate expenses indicate blonde ab
proceedings favourite transmission anderson utc characteristics der lose organic seek experiences
albums cheats extremely verzeichnis contracts guests hosted diseases concerning developers
equivalent chemistry tony neighborhood nevada kits thailand variables agenda anyway continues tracks
advisory cam curriculum logic template prince circle soil grants anywhere psychology responses
atlantic wet circumstances edward investor identification ram leaving wildlife appliances matt elder
cooking speaking sponsors fox invoice receipt subtotal balance due cashier""".split()

CHINESE = """的 是 在 和 了 有 与 及 对 中
发票 金额 合计 日期 公司 服务 识别 文字 光学 字符 图像 扫描 文件 合同 价格 数量 单位 名称
税率 税额 地址 电话 银行 账号 开户 付款 收款 订单 编号 客户 供应 商品 规格 型号 备注 签名 盖章 审核
财务 报销 费用 差旅 住宿 交通 餐饮 办公 用品 设备 维修 保险 租赁 工资 奖金 社保 公积 医疗 教育 培训
会议 通知 报告 总结 计划 方案 项目 管理 系统 软件 硬件 网络 数据 信息 技术 开发 测试 运维 安全 质量
标准 规范 流程 制度 政策 法律 法规 条款 协议 授权 许可 证书 证明 身份 护照 驾驶 执照 营业 登记 注册
资本 股东 董事 监事 经理 部门 员工 职位 岗位 招聘 面试 考核 绩效 晋升 离职 退休 北京 上海 广州 深圳
杭州 南京 成都 武汉 西安 重庆 天津 苏州 中国 人民 共和 国家 政府 社会 经济 发展 改革 创新 科技 文化
历史 地理 自然 环境 能源 交通 城市 农村 农业 工业 商业 金融 市场 贸易 投资 消费 生产 产品 品牌 销售
价格 成本 利润 收入 支出 预算 结算 审计 会计 统计 分析 研究 调查 问卷 样本 结果 结论 建议 意见 问题
答案 学生 老师 学校 大学 课程 考试 成绩 作业 图书 阅读 写作 语言 英语 汉语 数学 物理 化学 生物 医院
医生 病人 药品 检查 诊断 治疗 手术 护理 健康 饮食 运动 旅游 酒店 机票 火车 汽车 地铁 航班 行李 天气
温度 时间 今天 明天 昨天 上午 下午 晚上 星期 月份 年度 季度 第一 第二 第三 最后 开始 结束 完成 处理
状态 成功 失败 错误 警告 提示 确认 取消 返回 提交 保存 删除 修改 查询 搜索 打印 下载 上传 导出 导入""".split()

# A pool of less common characters: words made of them are rare, like real names and terms.
RARE_HAN = [chr(code) for code in range(0x5000, 0x8FFF, 7)]


def zipf_weights(n: int, s: float = 1.05) -> list[float]:
    total = 0.0
    weights = []
    for rank in range(1, n + 1):
        total += 1 / rank**s
        weights.append(total)
    return weights


class TextMaker:
    """Zipf-distributed English and Chinese words, made into OCR-like lines and records."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        rng = random.Random(1)  # the same vocabulary in every process
        english = list(dict.fromkeys(ENGLISH))
        syllables = ["ka", "lo", "mi", "ter", "van", "dor", "sel", "quin", "bra", "zu", "ph", "ex", "ol"]
        english += ["".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(15000)]
        self.english = list(dict.fromkeys(english))
        chinese = list(dict.fromkeys(CHINESE))
        chinese += ["".join(rng.choices(RARE_HAN, k=rng.randint(2, 3))) for _ in range(8000)]
        self.chinese = chinese
        self.en_weights = zipf_weights(len(self.english))
        self.zh_weights = zipf_weights(len(self.chinese))
        self.lines = [self._line() for _ in range(60000)]
        self.encoded = {line: json.dumps(line, ensure_ascii=False) for line in self.lines}

    def _line(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.5:
            words = rng.choices(self.english, cum_weights=self.en_weights, k=rng.randint(3, 9))
            if rng.random() < 0.4:
                words.append(f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}")
            words[0] = words[0].capitalize()
            return " ".join(words)
        if kind < 0.8:
            words = rng.choices(self.chinese, cum_weights=self.zh_weights, k=rng.randint(3, 8))
            if rng.random() < 0.3:
                words.insert(rng.randint(1, len(words) - 1), "，")
            return "".join(words) + rng.choice(["", "。", "：", f"{rng.randint(1, 999)}元"])
        words = rng.choices(self.chinese, cum_weights=self.zh_weights, k=rng.randint(1, 4))
        english = rng.choices(self.english, cum_weights=self.en_weights, k=rng.randint(1, 4))
        return "".join(words) + " " + " ".join(english) + f" {rng.randint(1, 500)}"

    def record_text(self) -> tuple[str, list[str]]:
        rng = self.rng
        target = rng.randint(50, 500)
        lines, length = [], 0
        while length < target:
            line = rng.choice(self.lines)
            lines.append(line)
            length += len(line) + 1
        if rng.random() < 0.3:
            lines.insert(rng.randrange(len(lines)), f"INV-{rng.randint(1000000, 9999999)}")
        text = "\n".join(lines)
        if len(text) > 500:  # cut the last line to stay within 500 characters
            text = text[:500]
            lines = text.split("\n")
        return text, lines

    def lines_json(self, lines: list[str]) -> str:
        """The record's `lines` as the engines store them: text, box and score per line."""
        items = []
        for i, line in enumerate(lines):
            encoded = self.encoded.get(line) or json.dumps(line, ensure_ascii=False)
            y = 10 + 30 * i
            items.append(
                f'{{"text": {encoded}, "box": [[8, {y}], [600, {y}], [600, {y + 26}], [8, {y + 26}]], '
                '"score": 0.93}'
            )
        return f"[{', '.join(items)}]"

    def file_name(self, n: int) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.35:
            return f"scan_{n}.png"
        if kind < 0.6:
            return f"IMG_{rng.randint(1000, 9999)}.jpg"
        if kind < 0.8:
            word = rng.choices(self.english, cum_weights=self.en_weights)[0]
            return f"{word}-{rng.choice(['jan', 'feb', 'march', 'april', 'may', 'june'])}.png"
        if kind < 0.9:
            return f"{rng.choices(self.chinese, cum_weights=self.zh_weights)[0]}_{n}.pdf"
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        return f"Screenshot 2024-{month:02d}-{day:02d} at 10.{rng.randint(10, 59)}.png"


# ---- load ---------------------------------------------------------------------------------


def admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def recreate_database() -> None:
    url, name = admin_url(BENCH_URL)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def record_columns():
    """Every column of app_ocrrecord that Django writes, and a value for each from a record
    with the model's defaults: the load survives fields added later."""
    from app.models import OcrRecord

    template = OcrRecord(
        image="x", file_name="x", sha256="x", size=1, width=1, height=1, engine="x", task="x", status="x"
    )
    columns, defaults = [], {}
    for field in OcrRecord._meta.concrete_fields:
        if field.primary_key:
            continue
        value = getattr(template, field.attname)
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        columns.append(field.column)
        defaults[field.column] = value
    return columns, defaults


def load_part(part: int, parts: int, rows: int, mine: int, owner_ids: list[int]) -> None:
    """COPY rows part, part + parts, part + 2*parts, ... (one process per core)."""
    columns, defaults = record_columns()
    maker = TextMaker(seed=part + 10)
    rng = maker.rng
    start = datetime(2023, 1, 1, tzinfo=UTC)
    searcher, others = owner_ids[0], owner_ids[1:]
    share = mine / rows
    engines = ["tesseract", "rapidocr", "rapidocr", "tesseract"]
    sql = f"COPY app_ocrrecord ({', '.join(columns)}) FROM STDIN"
    template = [defaults[column] for column in columns]
    at = {column: i for i, column in enumerate(columns)}
    with psycopg.connect(BENCH_URL) as conn, conn.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # no per-row foreign-key checks
        with cursor.copy(sql) as copy:
            for n in range(part, rows, parts):
                text, lines = maker.record_text()
                engine = engines[n % 4]
                row = list(template)
                row[at["owner_id"]] = searcher if rng.random() < share else rng.choice(others)
                row[at["image"]] = f"uploads/2024/03/{rng.getrandbits(128):032x}.png"
                row[at["file_name"]] = maker.file_name(n)
                row[at["sha256"]] = f"{rng.getrandbits(256):064x}"
                row[at["size"]] = rng.randint(20000, 900000)
                row[at["width"]], row[at["height"]] = 1240, 1754
                row[at["engine"]] = engine
                row[at["lang"]] = "eng+chi_sim" if engine == "tesseract" else ""
                row[at["task"]] = "document"
                row[at["status"]] = "done" if rng.random() < 0.97 else "failed"
                row[at["text"]] = text
                row[at["lines"]] = maker.lines_json(lines)
                row[at["duration_ms"]] = rng.randint(80, 4000)
                row[at["created_at"]] = start + timedelta(seconds=30 * n + rng.randint(0, 29))
                copy.write_row(row)
        conn.commit()


def load(rows: int, mine: int, parts: int) -> dict[str, float]:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    timings = {}
    started = time.perf_counter()
    recreate_database()
    call_command("migrate", verbosity=0)
    users = [User(username=SEARCHER, password="!")]
    users += [User(username=f"other{i}", password="!") for i in range(OTHERS)]
    owner_ids = [user.pk for user in User.objects.bulk_create(users)]
    timings["create + migrate"] = time.perf_counter() - started

    with connection.cursor() as cursor:  # build the indexes once, after the load
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'app_ocrrecord' "
            "AND indexname <> 'app_ocrrecord_pkey'"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    connection.close()

    started = time.perf_counter()
    workers = [Process(target=load_part, args=(i, parts, rows, mine, owner_ids)) for i in range(parts)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode:
            raise SystemExit(f"a loader failed with exit code {worker.exitcode}")
    timings["COPY"] = time.perf_counter() - started

    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET max_parallel_maintenance_workers = 2")
        for name, definition in indexes:
            started = time.perf_counter()
            cursor.execute(definition)
            timings[f"index {name}"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("VACUUM (ANALYZE) app_ocrrecord")
        timings["VACUUM ANALYZE"] = time.perf_counter() - started
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('app_ocrrecord'))")
        timings["size"] = cursor.fetchone()[0]
    return timings


# ---- measure ------------------------------------------------------------------------------


def searches() -> list[tuple[str, dict[str, str]]]:
    """~50 searches of every kind, picked from the vocabulary the rows were made of."""
    maker = TextMaker(seed=99)
    en, zh = maker.english, maker.chinese
    picked = [("common word", word) for word in ("the", "total", "payment", "invoice", "Date", "data")]
    picked += [("mid word", en[rank]) for rank in (150, 400, 900, 1500, 2500)]
    picked += [("rare word", en[rank]) for rank in (3000, 5000, 7000, 9500)]
    picked += [("word start", start) for start in ("pay", "inform", "manag")]
    picked += [("Chinese 2", word) for word in ("发票", "识别", "价格", "银行", "审计")]
    picked += [("Chinese 2 rare", word) for word in zh[3000:8000:2500]]
    picked += [("Chinese 1", char) for char in ("的", "发", "务")]
    picked += [("Chinese 3-4", text) for text in ("字符识别", "光学字符", "发票金额", "服务费用", "合同编号")]
    line = next(line for line in maker.lines if sum("\u4e00" <= c <= "\u9fff" for c in line) > 10)
    han = "".join(c for c in line if "\u4e00" <= c <= "\u9fff")
    picked += [("Chinese substring", han[1:4]), ("Chinese substring", han[3:8])]
    picked += [("mixed", f"{zh[2]} {en[10]}"), ("mixed", f"invoice {zh[10]}")]
    picked += [("two words", "total payment"), ("two words", f"{en[30]} {en[300]}")]
    picked += [("file name", "scan_4242"), ("file name", "IMG"), ("file name", "march.png")]
    picked += [("number", "INV-1234567"), ("number", "42.00")]
    picked += [("no match", "xylophonequartz"), ("no match", "龘龘"), ("no match", "zzzz qqqq")]
    searches = [(kind, {"search": term}) for kind, term in picked]
    searches += [
        ("+ ordering", {"search": "the", "ordering": "-created_at"}),
        ("+ ordering", {"search": "the", "ordering": "-duration_ms"}),
        ("+ ordering", {"search": "识别", "ordering": "file_name"}),
        ("+ filter", {"search": "payment", "engine": "rapidocr", "status": "done"}),
    ]
    return searches


def label(params: dict[str, str]) -> str:
    rest = " ".join(f"{key}={value}" for key, value in params.items() if key != "search")
    return f"{params['search']} {rest}".strip()


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return (
        f"n={len(values)} p50 {statistics.median(values):.1f} ms, p95 {p95:.1f} ms, max {values[-1]:.1f} ms"
    )


def orm_page(user, params: dict[str, str]) -> tuple[int, int]:
    """What the list view runs, without HTTP and JSON: the filter backends (filters,
    ordering, search: the window of matching ids, which is also the count), then the page."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from app.api.views import HistoryViewSet

    view = HistoryViewSet(action="list", format_kwarg=None)
    view.request = Request(RequestFactory().get("/api/history/", params))
    view.request.user = user
    page = view.paginator.paginate_queryset(view.filter_queryset(view.get_queryset()), view.request, view)
    return view.paginator.page.paginator.count, len(page)


def median_ms(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def measure(repeat: int, explain: str) -> None:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    user = User.objects.get(username=SEARCHER)
    client = APIClient()
    client.force_authenticate(user)

    db_times, api_times = [], []
    print(f"\n{'kind':18} {'search':34} {'count':>6} {'db ms':>7} {'api ms':>7}")
    for kind, params in searches():
        db_ms, (count, _) = median_ms(lambda params=params: orm_page(user, params), repeat)
        api_ms, response = median_ms(lambda params=params: client.get("/api/history/", params), repeat)
        assert response.status_code == 200, response.content
        assert response.json()["count"] == count
        db_times.append(db_ms)
        api_times.append(api_ms)
        print(f"{kind:18} {label(params):34} {count:>6} {db_ms:7.1f} {api_ms:7.1f}")
    print(f"\nsearch + page of 20 (ORM): {percentiles(db_times)}")
    print(f"GET /api/history/ (HTTP, JSON): {percentiles(api_times)}")

    with CaptureQueriesContext(connection) as queries:
        orm_page(user, {"search": explain})
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) for search={explain!r}: {query['sql'][:90]}…")
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
            for (line,) in cursor.fetchall():
                print("  " + (line if len(line) < 200 else line[:180] + "…"))  # long id lists


def compare_trigram(repeat: int) -> None:
    """The alternative for Chinese: a pg_trgm GIN index on the text and LIKE '%term%'.
    Built for the comparison, timed, then dropped. Both sides newest first, no ranking."""
    from django.contrib.auth.models import User
    from django.db import connection

    user = User.objects.get(username=SEARCHER)
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        started = time.perf_counter()
        cursor.execute("CREATE INDEX bench_text_trgm ON app_ocrrecord USING gin (text gin_trgm_ops)")
        built = time.perf_counter() - started
        cursor.execute("SELECT pg_size_pretty(pg_relation_size('bench_text_trgm'))")
        print(f"\npg_trgm GIN index on text: built in {built:.0f} s, {cursor.fetchone()[0]}")
        cursor.execute("ANALYZE app_ocrrecord")

        def trigram(term: str) -> int:
            pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where = "owner_id = %s AND text LIKE %s"
            cursor.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM app_ocrrecord WHERE {where} LIMIT %s) AS m",
                [user.pk, pattern, 1000],
            )
            count = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT * FROM app_ocrrecord WHERE {where} ORDER BY created_at DESC, id DESC LIMIT 20",
                [user.pk, pattern],
            )
            cursor.fetchall()
            return count

        print(f"{'Chinese term':14} {'count':>6} {'trigram ms':>10} {'bigram FTS ms':>13}")
        for term in (
            "的",
            "务",
            "发票",
            "识别",
            "价格",
            "字符识别",
            "发票金额",
            "服务费用",
            "合同编号",
            "龘龘",
        ):
            trigram_ms, count = median_ms(lambda term=term: trigram(term), repeat)
            params = {"search": term, "ordering": "-created_at"}
            fts_ms, _ = median_ms(lambda params=params: orm_page(user, params), repeat)
            print(f"{term:14} {count:>6} {trigram_ms:10.1f} {fts_ms:13.1f}")
        cursor.execute("DROP INDEX bench_text_trgm")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--mine", type=int, default=100_000, help="rows of the searching user")
    parser.add_argument("--parts", type=int, default=os.cpu_count() or 2, help="loading processes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per search; the median is kept")
    parser.add_argument("--keep", action="store_true", help="reuse the loaded database")
    parser.add_argument("--explain", default="total", help="the term whose plans are printed")
    parser.add_argument("--trigram", action="store_true", help="also time a pg_trgm index for Chinese")
    args = parser.parse_args()
    django.setup()
    if not args.keep:
        started = time.perf_counter()
        timings = load(args.rows, args.mine, args.parts)
        print(
            f"loaded {args.rows} rows ({args.mine} the searcher's) in {time.perf_counter() - started:.0f} s:"
        )
        for step, value in timings.items():
            print(f"  {step:32} {value:.1f} s" if isinstance(value, float) else f"  {step:32} {value}")
    measure(args.repeat, args.explain)
    if args.trigram:
        compare_trigram(args.repeat)


if __name__ == "__main__":
    main()
