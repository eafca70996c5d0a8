"""A small, seeded, self-made corpus of Chinese book-like records for the offline demo and tests.

It is NOT Douban data: every sentence is assembled from phrase lists written for this project. Tags
follow an imbalanced (Zipf-like) distribution, each book's text draws most of its phrases from the
topics of its tags (so the labels are learnable), and a few records are deliberately defective
(an exact duplicate, a second edition, a too-short text, HTML residue, a tag-less book) so that the
build report of the demo shows every kind of drop.
"""

from __future__ import annotations

import random

from imcm_build.records import Record

DEMO_SOURCE = "imcm-demo-corpus"

# tag → phrases that books carrying that tag tend to contain
TOPICS: dict[str, list[str]] = {
    "小说": ["故事围绕一个普通家庭展开", "主人公在命运的转折处做出选择", "人物形象鲜明", "情节跌宕起伏"],
    "文学": ["语言凝练而富有诗意", "作者以细腻的笔触描绘人性", "文字之间流淌着深沉的情感", "经典的叙事结构"],
    "历史": ["从王朝兴衰中寻找规律", "史料翔实", "还原了一个时代的社会风貌", "帝王将相与普通百姓的命运交织"],
    "科幻": ["人类第一次接触外星文明", "宇宙深处传来神秘信号", "未来城市里人工智能无处不在", "时间旅行带来的悖论"],
    "推理": ["一桩离奇的密室杀人案", "侦探抽丝剥茧寻找真相", "每个人都有不在场证明", "凶手就隐藏在众人之中"],
    "心理学": ["揭示了情绪背后的认知机制", "通过大量实验解释人类行为", "帮助读者理解自己的内心", "关于习惯与动机的研究"],
    "哲学": ["追问存在与意义", "思想家们关于自由的争论", "理性与经验的边界", "伦理学的基本问题"],
    "经济学": ["市场如何配置稀缺资源", "通货膨胀与利率的关系", "激励机制决定了人们的选择", "全球贸易格局的变化"],
    "编程": ["从零开始编写可维护的代码", "算法与数据结构是程序的基础", "通过实例讲解软件设计模式", "调试与测试的实践经验"],
    "科普": ["用通俗的语言讲解科学原理", "从细胞到星系的奇妙旅程", "科学家如何提出并检验假说", "日常生活中的物理现象"],
    "传记": ["记录了他跌宕起伏的一生", "从贫寒少年到一代宗师", "书中收录了大量珍贵书信", "一个时代人物的精神肖像"],
    "日本文学": ["物哀之美贯穿全书", "东京街头的孤独青年", "四季流转中的细腻情感", "和风浓郁的乡村生活"],
    "外国文学": ["欧洲小镇上的家族往事", "译文忠实于原著风貌", "战争阴影下的爱情", "大洋彼岸的移民故事"],
    "诗歌": ["收录诗人各个时期的代表作", "意象清新而节奏明快", "短诗中蕴含深远的哲思", "抒情与叙事相交融"],
    "管理": ["企业如何建立高效团队", "领导者的决策方法", "组织变革中的沟通艺术", "战略规划与执行"],
    "旅行": ["行走在高原与雪山之间", "一座城市的街巷与美食", "背包穿越异国他乡", "旅途中的偶遇与感悟"],
    "童话": ["森林里的小动物们", "勇敢的小女孩踏上冒险", "魔法王国里的秘密", "温暖而充满想象力的故事"],
    "艺术": ["绘画史上的伟大作品", "色彩与构图的奥秘", "艺术家与他们的时代", "审美趣味的变迁"],
    "社会学": ["城市化进程中的乡村", "阶层流动与教育机会", "田野调查揭示的社会结构", "现代人的孤独与连接"],
    "政治": ["权力如何被制衡", "国家治理的历史经验", "民主制度的起源与演变", "国际关系中的博弈"],
    "漫画": ["画风细腻的分镜", "少年热血的成长冒险", "黑白线条中的幽默", "连载多年的人气作品"],
    "建筑": ["空间与光影的对话", "传统木构建筑的营造法式", "现代主义建筑的代表作", "城市规划与公共空间"],
    "数学": ["从数论到几何的思想之旅", "证明的严谨与优雅", "概率论在生活中的应用", "无穷与极限的概念"],
    "教育": ["如何培养孩子的阅读习惯", "课堂教学的改革实践", "家庭教育中的沟通", "终身学习的理念"],
}
COMMON = [
    "本书出版后广受好评", "作者多年心血之作", "全书分为若干章节", "适合对此感兴趣的读者阅读",
    "书中配有大量插图", "内容深入浅出", "值得反复品读", "这是一部引人深思的作品", "读来令人手不释卷",
]
AUTHOR_PHRASES = [
    "作者毕业于北京大学中文系", "现居上海，专职写作", "曾任出版社编辑多年", "其作品被译为多种语言",
    "获得过多项文学奖项", "长期从事相关领域的研究与教学",
]
TITLE_PARTS = ["时光", "远方", "河流", "星辰", "城市", "记忆", "森林", "灯塔", "长夜", "花园", "海岸", "山谷"]


def _zipf_tag_weights(tags: list[str], exponent: float = 1.1) -> list[float]:
    return [1.0 / (rank + 1) ** exponent for rank in range(len(tags))]


def _sample_tags(rng: random.Random, tags: list[str], weights: list[float]) -> list[str]:
    wanted = rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5, 6])
    chosen: list[str] = []
    while len(chosen) < wanted:
        tag = rng.choices(tags, weights)[0]
        if tag not in chosen:
            chosen.append(tag)
    return chosen


SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红娥玲芬燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹香月莺媛瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝思丽"
PLACES = ["江南小镇", "北方边城", "海滨渔村", "西北高原", "岭南古城", "塞外草原", "山中书院", "运河码头", "老城胡同", "雨林深处"]


def _sentence(rng: random.Random, tags: list[str], name: str, place: str, year: int) -> str:
    phrase = rng.choice(TOPICS[rng.choice(tags)]) if tags and rng.random() < 0.8 else rng.choice(COMMON)
    opening = rng.choice([f"{name}", f"{year}年，", f"在{place}，", f"{year + rng.randint(1, 40)}年前后", "", ""])
    return opening + phrase


def _text(rng: random.Random, tags: list[str], sentences: int) -> str:
    name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice([1, 2])))
    place, year = rng.choice(PLACES), rng.randint(1800, 2020)
    parts = [_sentence(rng, tags, name, place, year) + rng.choice(["，", "。", "；"]) for _ in range(sentences)]
    return "".join(parts).rstrip("，；。") + "。"


def generate_demo_records(n_books: int = 400, seed: int = 0) -> list[Record]:
    """`n_books` regular records plus a handful of defective ones; same seed → same records."""
    rng = random.Random(seed)
    tags = list(TOPICS)
    weights = _zipf_tag_weights(tags)
    records: list[Record] = []
    for index in range(n_books):
        book_tags = _sample_tags(rng, tags, weights)
        summary = _text(rng, book_tags, rng.randint(12, 40))
        intro = "，".join(rng.sample(AUTHOR_PHRASES, 3)) + "。"
        subject_id = str(30000000 + index * 7)
        records.append(
            Record(
                id=subject_id,
                title=rng.choice(TITLE_PARTS) + rng.choice(["之歌", "往事", "笔记", "简史", "的秘密"]) + f"（第{index + 1}卷）",
                summary=summary,
                author_intro=intro if rng.random() < 0.7 else "",
                tags=tuple(book_tags),
                url=f"https://book.douban.com/subject/{subject_id}/",
                source=DEMO_SOURCE,
            )
        )
    records.extend(_defective_records(records, rng))
    return records


def _defective_records(regular: list[Record], rng: random.Random) -> list[Record]:
    first, second = regular[0], regular[1]
    messy = _text(rng, ["历史", "传记"], 30)

    def variant(record: Record, new_id: str, **changes: object) -> Record:
        fields = {
            "id": new_id, "title": record.title, "summary": record.summary, "author_intro": record.author_intro,
            "tags": record.tags, "url": f"https://book.douban.com/subject/{new_id}/", "source": DEMO_SOURCE,
        }
        fields.update(changes)
        return Record(**fields)  # type: ignore[arg-type]

    return [
        variant(first, "39000001", tags=first.tags[:1] + ("经典",)),  # exact duplicate text, other tags
        variant(second, "39000002", summary=second.summary + "（新版序言）"),  # another edition
        variant(first, "39000003", title="短书", summary="一本很短的小书。", author_intro=""),  # too short
        variant(second, "39000004", title="史记&amp;人物", summary="<p>" + messy.replace("。", "。<br/>") + "...(展开全部)",
                tags=("历史", "传记")),  # HTML residue and a truncation mark for the clean step
        variant(first, "39000005", title="无标签之书", summary=first.summary[::-1], tags=()),  # no tag at all
    ]
